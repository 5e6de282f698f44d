"""Local webhook sink: receives what the alert run posts to Teams, Slack and generic webhooks, as the receivers answer.

Like the SMTP outbox, it keeps everything it accepted: each request as two files under ``<dir>/<kind>/<name>/``,
``<stamp>-<seq>.json`` (the body, the exact bytes received: a signature can be checked against it) and
``<stamp>-<seq>.headers.json`` (the request's headers), written to a temp name and renamed so a reader never
sees half a file. HTTPS with the stack's CA (the receivers are https-only), on loopback only.

Routes and answers, as the real receivers give them (never kinder):
- ``POST /teams/<name>``: a Teams Workflows webhook ("Post to a channel when a webhook request is received").
  202 Accepted with an empty body once the JSON is taken; the flow then posts the card, or fails on its own
  (support.microsoft.com "Create incoming webhooks with Workflows for Microsoft Teams"; Power Automate's request
  trigger answers 202 before the flow runs: learn.microsoft.com/azure/connectors/connectors-native-reqres).
  A body that is not JSON: 400. A message without an Adaptive Card attachment is accepted (202), as the
  trigger accepts it, and stored with a ``.problem`` note (the flow run fails in Teams: nothing is posted).
- ``POST /slack/<name>``: a Slack incoming webhook. 200 with the text body ``ok``; 400 ``invalid_payload`` for
  a body that is not a JSON object, 400 ``no_text`` without `text` or `blocks`, 400 ``invalid_blocks`` for more
  than 50 blocks or a block without a type (api.slack.com/messaging/webhooks "Handling errors",
  api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks, api.slack.com/reference/block-kit/blocks).
- ``POST /webhook/<name>``: a generic receiver: 200 with an empty body for any JSON body, 400 otherwise.
Fault hooks (in-process, tests): ``service.fail_next(kind, status, count, retry_after=..., body=...)`` makes the
next requests of that kind fail with that status (429 with Retry-After, 503, 404 ``no_service`` ...), and
``service.received(kind)`` lists what was stored. Failed requests are not stored (nothing was delivered).

In-process: ``await start_webhook_sink(WebhookSinkConfig(...))``; CLI: ``python -m standins.webhook_sink --dir
.local/webhooks --tls-dir .local/tls --port 7806`` prints ``READY https://127.0.0.1:7806``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from standins._server import RunningHttpsService, serve_cli, start_https_service
from standins.mail import write_atomically

KINDS = ("teams", "slack", "webhook")
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
SLACK_MAX_BLOCKS = 50
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,80}$")


@dataclass(frozen=True)
class WebhookSinkConfig:
    directory: Path  # where the requests are kept, one folder per kind and name
    tls_dir: Path  # the stack's CA and server certificate


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: str | None = None
    body: str = ""


@dataclass(frozen=True)
class Received:
    kind: str
    name: str
    body: bytes
    headers: dict[str, str]
    path: Path  # the body's file


class WebhookSinkService:
    def __init__(self, config: WebhookSinkConfig) -> None:
        self.config = config
        self._faults: dict[str, list[Fault]] = {kind: [] for kind in KINDS}
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()
        self._received: list[Received] = []

    def fail_next(
        self, kind: str, status: int, count: int = 1, *, retry_after: str | None = None, body: str = ""
    ) -> None:
        """The next `count` requests to `kind` routes answer `status` (and Retry-After), storing nothing."""
        with self._lock:
            self._faults[kind] += [Fault(status, retry_after, body)] * count

    def received(self, kind: str | None = None) -> list[Received]:
        with self._lock:
            return [item for item in self._received if kind is None or item.kind == kind]

    async def handle(self, request: web.Request) -> web.Response:
        kind, name = request.match_info["kind"], request.match_info["name"]
        if kind not in KINDS or not _NAME.fullmatch(name):
            return web.Response(status=404, text="no_service" if kind == "slack" else "")
        with self._lock:
            fault = self._faults[kind].pop(0) if self._faults[kind] else None
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return web.Response(status=fault.status, text=fault.body, headers=headers)
        body = await request.read()
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            payload = None
        refusal = _refusal(kind, payload)
        if refusal is not None:
            return web.Response(status=400, text=refusal)
        self._store(kind, name, body, dict(request.headers), _problem(kind, payload))
        if kind == "teams":
            return web.Response(status=202)
        if kind == "slack":
            return web.Response(status=200, text="ok", content_type="text/html")
        return web.Response(status=200)

    def _store(self, kind: str, name: str, body: bytes, headers: dict[str, str], problem: str | None) -> None:
        with self._lock:
            sequence = next(self._sequence)
        stem = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{sequence:06d}"
        folder = self.config.directory / kind / name
        write_atomically(folder / f"{stem}.headers.json", (json.dumps(headers, indent=2) + "\n").encode())
        if problem:
            write_atomically(folder / f"{stem}.problem", (problem + "\n").encode())
        path = write_atomically(folder / f"{stem}.json", body)  # last: a reader listing *.json finds the others
        with self._lock:
            self._received.append(Received(kind, name, body, headers, path))


def _refusal(kind: str, payload: Any) -> str | None:
    """The 400 body a receiver answers for this payload, or None when it takes it."""
    if kind == "slack":
        if not isinstance(payload, dict):
            return "invalid_payload"
        if not payload.get("text") and not payload.get("blocks"):
            return "no_text"
        blocks = payload.get("blocks", [])
        if not isinstance(blocks, list) or len(blocks) > SLACK_MAX_BLOCKS:
            return "invalid_blocks"
        if any(not isinstance(block, dict) or not isinstance(block.get("type"), str) for block in blocks):
            return "invalid_blocks"
        return None
    return None if payload is not None else ""


def _problem(kind: str, payload: Any) -> str | None:
    """Why Teams would post nothing for an accepted message (the flow fails after the 202), or None."""
    if kind != "teams":
        return None
    attachments = payload.get("attachments") if isinstance(payload, dict) else None
    if not isinstance(attachments, list) or not attachments:
        return "no attachments: the flow posts no card"
    for attachment in attachments:
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD:
            return f"an attachment is not {ADAPTIVE_CARD}"
        content = attachment.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            return "an attachment's content is not an AdaptiveCard"
    return None


def build_webhook_sink_app(service: WebhookSinkService) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{kind}/{name}", service.handle)
    return app


async def start_webhook_sink(
    config: WebhookSinkConfig, *, host: str = "127.0.0.1", port: int = 0
) -> RunningHttpsService[WebhookSinkService]:
    service = WebhookSinkService(config)
    return await start_https_service(service, build_webhook_sink_app(service), config.tls_dir, host=host, port=port)


def sink_settings(values: dict[str, str], sample_base: str, url: str) -> dict[str, str]:
    """The settings whose value points at the sample's sink (`sample_base`, the fixed port), pointed at `url`."""
    return {name: url + value[len(sample_base) :] for name, value in values.items() if value.startswith(sample_base)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.webhook_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--dir", type=Path, required=True, help="where the received requests are kept")
    parser.add_argument("--tls-dir", type=Path, required=True, help="where the local CA and server cert live")
    args = parser.parse_args(argv)
    config = WebhookSinkConfig(directory=args.dir, tls_dir=args.tls_dir)
    serve_cli(lambda: start_webhook_sink(config, host=args.host, port=args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
