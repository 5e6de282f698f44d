"""POST a JSON body to a webhook: retries with backoff on 429, 5xx and network errors, Retry-After honoured.

All three receivers throttle with 429 and a Retry-After header: Slack ("Rate limits", api.slack.com/docs/
rate-limits: about one message per second per webhook, 429 with Retry-After in seconds), Teams Workflows
(Power Automate request limits, learn.microsoft.com/power-automate/limits-and-config: 429 with Retry-After),
and any receiver following RFC 9110 section 10.2.3 (seconds or an HTTP-date). A wait longer than
`max_wait_seconds` is not waited within the run: the delivery fails, stays pending and the next run retries it.
Any other 4xx is final for this run (a URL that is gone, a payload refused): retrying the same body cannot help.
Redirects are not followed: a webhook URL that redirects is misconfigured, and following it would hand the body
(and a POST turned GET) to another host.
The URL is a secret: errors name the channel's app setting, never the URL.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.azure_retry import retry_after_seconds
from shared.email.delivery import tls_context
from shared.errors import DeliveryError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Response:
    status: int
    body: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # per delivery within a run; the next run tries again
    backoff_seconds: float = 1.0  # the first wait without Retry-After; doubled each time
    max_wait_seconds: float = 30.0  # a longer Retry-After leaves the delivery to the next run
    timeout_seconds: float = 10.0  # per request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    label: str,
    accept: Callable[[Response], str | None],
    ca_bundle: str | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sign: Callable[[bytes], Mapping[str, str]] | None = None,
) -> Response:
    """POST `body` until `accept` returns None (accepted) or the policy gives up (DeliveryError). `accept` gets a
    2xx answer and returns why it is not a delivery (Slack answers 200 with a body other than "ok"), or None.
    `sign` adds headers per attempt (a fresh signature timestamp on each)."""
    opener = urllib.request.build_opener(
        _NoRedirect(), urllib.request.HTTPSHandler(context=tls_context(ca_bundle))
    )
    policy = policy or RetryPolicy()
    problem = ""
    for attempt in range(1, policy.attempts + 1):
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **headers, **(sign(body) if sign else {})},
        )
        wait: float | None = policy.backoff_seconds * 2 ** (attempt - 1)
        try:
            with opener.open(request, timeout=policy.timeout_seconds) as answer:
                response = Response(answer.status, _text(answer.read()), dict(answer.headers.items()))
            refused = accept(response)
            if refused is None:
                return response
            raise DeliveryError(f"{label}: HTTP {response.status}: {refused}")
        except urllib.error.HTTPError as error:
            status = error.code
            detail = _text(error.read())[:200]
            problem = f"HTTP {status}" + (f": {detail}" if detail else "")
            if status not in RETRY_STATUSES:
                raise DeliveryError(f"{label}: {problem}") from error
            after = retry_after_seconds(dict(error.headers or {}), clock())
            if after is not None:
                wait = after
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            problem = f"{type(reason).__name__}: {reason}"
        if attempt == policy.attempts:
            break
        if wait is not None and wait > policy.max_wait_seconds:
            raise DeliveryError(f"{label}: {problem}; Retry-After {wait:.0f}s is past this run, left to the next")
        sleep(wait or 0.0)
    raise DeliveryError(f"{label}: {problem} after {policy.attempts} attempts")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").strip()
