"""Reprice final cost windows on purpose, with a reason: the explicit command a closed month needs.

    .venv/bin/python -m tools.reprice --from 2026-10-01 --to 2026-11-01 --reason "gpt-9 price added" [--dry-run]
    make reprice REPRICE_ARGS='--from 2026-10-01 --to 2026-11-01 --reason "gpt-9 price added" --dry-run'

Every cost window of the UTC days from --from up to, not including, --to is recomputed with the current
price table and deployment map through the costs run's own steps (shared/costs/reprice.py); each window
whose content changed is uploaded as a new revision (its final flag kept), and the reason is logged and
recorded in its progress. Prints the reason, the window counts, old -> new price versions, the cost
difference per currency and one line per rewritten window; --dry-run prints the same and uploads nothing.
Settings are the app's (shared/config.py), read from the environment; --settings adds the Values of a
local.settings.json the environment does not set, as `func start` does (.local/local.settings.json for
the local stack, `make local-settings-azure` for Azure, where your sign-in needs the app's data roles).
Exit status 0; 2 on bad arguments, settings or input files (a range that is empty or holds a window not
final yet); 1 when an Azure service failed (a query, the upload, the progress table).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from shared.config import load_settings
from shared.costs.clients import CostClients
from shared.costs.reprice import reprice_costs
from shared.errors import AzureServiceError, InputError

_MAX_REASON_CHARACTERS = 1000  # recorded in each window's progress entity (a Table storage string holds 32K)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise argparse.ArgumentTypeError("is empty: say why these windows are repriced (it is logged and recorded)")
    if len(reason) > _MAX_REASON_CHARACTERS:
        raise argparse.ArgumentTypeError(f"has {len(reason)} characters; at most {_MAX_REASON_CHARACTERS}")
    return reason


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.reprice", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--from", dest="first_day", type=_day, required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end_day", type=_day, required=True, help="UTC day after the last, YYYY-MM-DD")
    parser.add_argument("--reason", type=_reason, required=True, help="why: logged and kept with each window")
    parser.add_argument("--dry-run", action="store_true", help="print what would change; upload nothing")
    parser.add_argument(
        "--settings", type=Path, help="a local.settings.json whose Values fill what the environment does not set"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: datetime | None = None,
    clients: CostClients | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """`environ` (default os.environ), `now` and `clients` let tests run it on the stand-ins."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as error:  # argparse has printed the usage and the problem
        return int(error.code or 0)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.settings is not None:
            _load_settings_file(args.settings)
        settings = load_settings(os.environ if environ is None else environ).costs
        report = reprice_costs(
            settings, args.first_day, args.end_day, args.reason, dry_run=args.dry_run, now=now, clients=clients
        )
    except InputError as error:
        print(f"python -m tools.reprice: {error}", file=sys.stderr)
        return 2
    except AzureServiceError as error:
        print(f"python -m tools.reprice: {error}", file=sys.stderr)
        return 1
    out(report.line())
    for line in report.window_lines():
        out("  " + line)
    return 0


def _load_settings_file(path: Path) -> None:
    """The file's Values into os.environ where not set (the SDK credential reads IDENTITY_* from there)."""
    from standins.funchost.settings import LocalSettingsError, load_local_settings

    try:
        load_local_settings(path)
    except LocalSettingsError as error:
        raise InputError(str(error)) from error


if __name__ == "__main__":
    raise SystemExit(main())
