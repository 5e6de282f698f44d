"""CLI: ``python -m standins.monitor --db .local/monitor.duckdb --tls-dir .local/tls --port N ...``.

Prints ``READY <url>`` once listening; stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from standins._server import serve_cli
from standins.bearer import add_identity_secret_argument, identity_secret
from standins.chaos import add_chaos_argument
from standins.monitor.app import start_monitor
from standins.monitor.config import DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_ROWS, MonitorConfig
from standins.monitor.schema import DEFAULT_SCHEMA_PATH


def parse_args(argv: list[str] | None = None) -> tuple[MonitorConfig, str, int]:
    parser = argparse.ArgumentParser(prog="python -m standins.monitor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", type=Path, required=True, help="DuckDB file holding the workspace tables")
    parser.add_argument("--tls-dir", type=Path, required=True, help="where the local CA and server cert live")
    parser.add_argument("--workspace-id", required=True)
    parser.add_argument("--rule-id", required=True, help="DCR immutable id, dcr-<32 hex>")
    parser.add_argument("--ikey", required=True, help="App Insights instrumentation key")
    add_identity_secret_argument(parser)
    parser.add_argument("--max-rows", type=int, default=DEFAULT_MAX_ROWS)
    parser.add_argument("--max-response-bytes", type=int, default=DEFAULT_MAX_RESPONSE_BYTES)
    parser.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA_PATH)
    add_chaos_argument(parser)
    args = parser.parse_args(argv)
    secret = identity_secret(parser, args)
    config = MonitorConfig(
        db_path=args.db,
        workspace_id=args.workspace_id,
        dcr_immutable_id=args.rule_id,
        instrumentation_key=args.ikey,
        tls_dir=args.tls_dir,
        identity_secret=secret,
        max_rows=args.max_rows,
        max_response_bytes=args.max_response_bytes,
        schema_path=args.schema,
        chaos_file=args.chaos,
    )
    return config, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    config, host, port = parse_args(argv)

    serve_cli(lambda: start_monitor(config, host=host, port=port))


if __name__ == "__main__":
    main()
