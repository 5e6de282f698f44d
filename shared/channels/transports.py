"""The Channel contract, the three webhook channels and their in-memory twin (tests).

Every channel takes a Delivery (shared/channels/payloads.py) and either delivers it or raises DeliveryError
(shared/errors.py); the alert run keeps what failed pending for that channel only (shared/alerts/run.py).
The delivery id (the email's Message-ID without <>: the same for every attempt at the same notifications) is in
every payload; the generic webhook also sends it as the Standard Webhooks `webhook-id` header, which the spec
makes the receiver's idempotency key (github.com/standard-webhooks/standard-webhooks spec/standard-webhooks.md,
"webhook-id: the unique webhook identifier ... the same when a webhook is retried"), and as `Idempotency-Key`
(IETF draft-ietf-httpapi-idempotency-key-header). Teams Workflows and Slack incoming webhooks document no
idempotency header: there the id is in the card's footer, and a resend after a crash is one more card.

Answers, as each receiver documents them:
- Teams Workflows: 202 Accepted (the flow runs after); any 2xx is taken as accepted.
- Slack: 200 with the body "ok"; failures are 4xx with a code in the body (invalid_payload, no_service,
  channel_is_archived, ...), and a 200 with any other body is not a delivery (api.slack.com/messaging/webhooks,
  "Handling errors").
- Generic: any 2xx.
Signature (generic webhook, Standard Webhooks v1): `webhook-signature: v1,<base64 HMAC-SHA256 of
"{webhook-id}.{webhook-timestamp}.{body}">` keyed with the secret's bytes ("whsec_" + base64, as the spec's
libraries take it), `webhook-timestamp` in Unix seconds; a receiver verifies it with any Standard Webhooks
library (tests/channels/ do, with the `standardwebhooks` package).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.channels.payloads import Delivery, slack_message, teams_message, webhook_event
from shared.channels.post import Response, RetryPolicy, post_json
from shared.errors import DeliveryError

SECRET_PREFIX = "whsec_"


class Channel(Protocol):
    @property
    def kind(self) -> str:
        """teams, slack or webhook (shared/alerts/rules.py CHANNEL_KINDS)."""
        ...

    def send(self, delivery: Delivery) -> None:
        """Deliver the digest or raise DeliveryError."""
        ...


def secret_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret ("whsec_" + base64); ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f'expected "{SECRET_PREFIX}" followed by base64')
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError(f'expected "{SECRET_PREFIX}" followed by base64') from None
    if len(key) < 24:
        raise ValueError("expected a key of at least 24 bytes (192 bits) after whsec_")
    return key


def signature_headers(key: bytes, webhook_id: str, body: bytes, at: datetime) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"webhook-id": webhook_id, "webhook-timestamp": timestamp, "webhook-signature": f"v1,{digest}"}


def _json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _any_2xx(response: Response) -> str | None:
    return None


def _slack_ok(response: Response) -> str | None:
    return None if response.body == "ok" else f"answered {response.body[:100]!r}, not \"ok\""


@dataclass(frozen=True)
class WebhookChannel:
    """One channel of a recipient group: its kind, its URL (from the app setting `setting`) and, for the generic
    webhook, its signing key."""

    kind: str  # teams, slack or webhook
    setting: str  # the app setting holding the URL: what errors name
    url: str = field(repr=False)
    signing_key: bytes | None = field(default=None, repr=False)  # webhook only
    ca_bundle: str | None = None  # extra CAs (the local stand-ins'); None: the system store
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def send(self, delivery: Delivery) -> None:
        label = f"{self.kind} channel of group {delivery.group} ({self.setting})"
        headers: dict[str, str] = {}
        sign: Callable[[bytes], Mapping[str, str]] | None = None
        if self.kind == "teams":
            body, accept = _json(teams_message(delivery)), _any_2xx
        elif self.kind == "slack":
            body, accept = _json(slack_message(delivery)), _slack_ok
        else:
            if self.signing_key is None:
                raise DeliveryError(f"{label}: no signing secret")  # config requires one; a hand-built channel may not
            key = self.signing_key
            body, accept = _json(webhook_event(delivery)), _any_2xx
            headers = {"Idempotency-Key": delivery.id}

            def sign(signed_body: bytes) -> Mapping[str, str]:  # a fresh timestamp on each attempt
                return signature_headers(key, delivery.id, signed_body, self.clock())

        post_json(
            self.url, body, headers, label=label, accept=accept, ca_bundle=self.ca_bundle, policy=self.policy,
            sleep=self.sleep, clock=self.clock, sign=sign,
        )  # fmt: skip


class InMemoryChannel:
    """A channel's twin: keeps each delivered Delivery in `sent`, fails as told (thread-safe)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sent: list[Delivery] = []
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def fail_next(self, count: int = 1, reason: str = "HTTP 503") -> None:
        with self._lock:
            self._failures += [reason] * count

    def send(self, delivery: Delivery) -> None:
        with self._lock:
            if self._failures:
                raise DeliveryError(f"in-memory {self.kind} channel: {self._failures.pop(0)}")
            self.sent.append(delivery)
