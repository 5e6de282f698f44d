"""Build a price catalog from a public source and show what changed.

    .venv/bin/python -m tools.prices retail [--region eastus] [--currency USD] --out catalog.json [--diff OLD]
    .venv/bin/python -m tools.prices litellm PATH/model_prices_and_context_window.json --out catalog.json

`retail` pages through the Azure Retail Prices API (serviceName 'Foundry Models', consumption prices);
`litellm` reads LiteLLM's price map. `--supplement FILE` adds a catalog of prices the source lacks (the
shipped catalog's PTU-hour price, say), each row with its own source; one that contradicts the source stops
the command. With `--diff OLD`, an undated source's changed price starts today (OLD's price keeps the days
before it) and a key the source dropped keeps its old prices, so a refresh never reprices the past by itself
(`--no-history` writes the source as it is). Both print rows per deployment type, what was skipped and what
could not be read (unknown: never guessed), and with --diff the prices added, removed and changed
against an existing catalog, for review before the file is committed. Exit status 0; 1 when the
source cannot be read completely (nothing is written); 2 on bad arguments or an unreadable --diff catalog.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from shared.costs.catalog import ImportResult, carry_history, catalog_text, diff_catalogs, read_catalog, supplement
from shared.costs.catalog_litellm import import_litellm
from shared.costs.catalog_retail import ENDPOINT, fetch_pages, import_pages, query_url
from shared.errors import AzureServiceError, InputError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.prices", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    retail = commands.add_parser("retail", help="from the Azure Retail Prices API")
    retail.add_argument("--region", help="armRegionName, e.g. eastus (default: every region)")
    retail.add_argument("--currency", help="currencyCode, e.g. USD or EUR (default: the API's, USD)")
    retail.add_argument("--endpoint", default=ENDPOINT, help=argparse.SUPPRESS)  # tests: a local server
    litellm = commands.add_parser("litellm", help="from LiteLLM's model_prices_and_context_window.json")
    litellm.add_argument("path", type=Path)
    for command in (retail, litellm):
        command.add_argument("--out", type=Path, required=True, help="the catalog file to write")
        command.add_argument("--diff", type=Path, help="an existing catalog to compare with")
        command.add_argument(
            "--supplement",
            type=Path,
            help="a catalog of prices the source lacks (each with its own source), added to the import",
        )
        command.add_argument(
            "--version", default="", help="the catalog's version, recorded on every summary row it prices"
        )
        command.add_argument(
            "--no-history",
            action="store_true",
            help="with --diff: do not keep the old catalog's prices that the source changed or dropped",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        old = read_catalog(args.diff) if args.diff else None
    except InputError as error:
        print(error, file=sys.stderr)
        return 2
    result: ImportResult
    try:
        if args.command == "retail":
            url = query_url(region=args.region, currency=args.currency, endpoint=args.endpoint)
            print(f"reading {url}")
            result = import_pages(fetch_pages(url), url)
            note = f"Azure Retail Prices API: {url}"
        else:
            result = import_litellm(args.path)
            note = f"LiteLLM price map: {args.path.name}"
    except (AzureServiceError, InputError) as error:  # nothing is written: no catalog from part of a source
        print(error, file=sys.stderr)
        return 1
    if args.supplement is not None:
        try:
            added = read_catalog(args.supplement)
        except InputError as error:
            print(error, file=sys.stderr)
            return 2
        clashes = supplement(result, added)
        if clashes:  # a hand price contradicting the source: the reviewer decides, nothing is written
            print(f"{args.supplement} contradicts the source:", *clashes, sep="\n  ", file=sys.stderr)
            return 1
        note += f"; supplemented by {args.supplement.name} ({len(added)} prices)"
    carried = [] if old is None or args.no_history else carry_history(old, result, datetime.now(UTC).date())
    args.out.write_text(catalog_text(result.rows, note=note, version=args.version), encoding="utf-8")
    print(f"wrote {args.out}")
    print(result.summary())
    if carried:
        print(f"history kept from {args.diff} ({len(carried)}):", *carried, sep="\n  ")
    if old is not None:
        print(f"compared with {args.diff}:")
        print(diff_catalogs(old, result.rows).text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
