"""CLI: ``python -m standins.simulator --config standins/stack.config.json --port N``."""

from __future__ import annotations

import argparse
from pathlib import Path

from standins._server import serve_cli
from standins.simulator.config import load_simulator_config
from standins.simulator.server import start_simulator

_DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "stack.config.json"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.simulator", description=__doc__)
    parser.add_argument("--config", type=Path, default=_DEFAULT_CONFIG, help="stack config JSON")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--meters-file", type=Path, default=None, help="where the account's token meters persist across starts"
    )
    args = parser.parse_args()
    config = load_simulator_config(args.config)

    serve_cli(lambda: start_simulator(config, host=args.host, port=args.port, meters_file=args.meters_file))


if __name__ == "__main__":
    main()
