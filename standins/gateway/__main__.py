"""``python -m standins.gateway --config standins/stack.config.json --subscriptions subs.json
--backend foundry-backend=http://127.0.0.1:7800 --port 7801`` prints ``READY http://127.0.0.1:7801``.

A policy the stand-in cannot run stops it before READY with the file, line and element."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from standins._server import serve_cli
from standins.chaos import add_chaos_argument, chaos_from
from standins.gateway.config import GatewayConfigError, load_gateway_config
from standins.gateway.policy import PolicyError
from standins.gateway.server import start_gateway


def _backend(text: str) -> tuple[str, str]:
    backend_id, separator, url = text.partition("=")
    if not separator or not backend_id or not url:
        raise argparse.ArgumentTypeError(f"expected BACKEND_ID=URL, got {text!r}")
    return backend_id, url


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standins.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("standins/stack.config.json"))
    parser.add_argument(
        "--subscriptions",
        type=Path,
        default=None,
        help="JSON list of {name, key, product, user} (keys the stack generated)",
    )
    parser.add_argument(
        "--backend",
        type=_backend,
        action="append",
        default=[],
        metavar="ID=URL",
        help="backend id → base URL (repeatable)",
    )
    parser.add_argument(
        "--appinsights-connection-string",
        default=None,
        help="InstrumentationKey=...;IngestionEndpoint=https://127.0.0.1:PORT/",
    )
    parser.add_argument("--ca-cert", type=Path, default=None, help="CA bundle trusted for the ingestion TLS")
    parser.add_argument("--metrics-flush-seconds", type=float, default=None)
    parser.add_argument(
        "--bypass-share", type=float, default=None, help='overrides "gateway"."bypass"."share" (demo of a bypass)'
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed in READY)")
    add_chaos_argument(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_gateway_config(
            args.config,
            subscriptions_file=args.subscriptions,
            backends=dict(args.backend),
            appinsights_connection_string=args.appinsights_connection_string,
            ca_cert=args.ca_cert,
            metrics_flush_seconds=args.metrics_flush_seconds,
            bypass_share=args.bypass_share,
        )
    except (GatewayConfigError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)

    try:
        chaos = chaos_from(args.chaos)
        serve_cli(lambda: start_gateway(config, host=args.host, port=args.port, chaos=chaos))
    except (PolicyError, GatewayConfigError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
