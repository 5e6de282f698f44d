"""Generate infra/app/workbook.json (the cost dashboard) from the repository's KQL files.

Each panel is one query file of shared/logs/kql/ (its includes expanded, as the app runs it) whose
`let start_time` / `let end_time` parameter lines are bound to the workbook's time range by the app's
own binder (shared/logs/kql.py), optionally followed by a panel tail (a summarize for the chart).
The file itself stays the single definition of what a cost is: the dashboard never re-implements
"latest complete revision". Run after changing a query or a panel:

    .venv/bin/python -m tools.build_workbook          # rewrite infra/app/workbook.json
    .venv/bin/python -m tools.build_workbook --check  # exit 1 when the committed file is stale

tests/infra/test_workbook.py runs --check's logic and validates every panel query with Microsoft's
KQL parser (placeholders expanded the way Workbooks expands them).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import KqlParameterError
from shared.logs.kql import KQL_DIR, bind_parameters, read_query

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "infra" / "app" / "workbook.json"

# Workbooks replaces {TimeRange:start} / {TimeRange:end} with datetime expressions of the picked range.
TIME_BINDINGS = {"start_time": "{TimeRange:start}", "end_time": "{TimeRange:end}"}
# Cost summaries of a window are uploaded after it (and recomputed later): query a wide scope and let
# the files' own WindowStart filters pick the range, so late revisions are never cut off.
QUERY_SCOPE_MS = 90 * 24 * 3600 * 1000


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    source: str  # file in shared/logs/kql/
    tail: str  # KQL appended to the file (may be empty)
    visualization: str  # table, timechart, barchart, piechart ...


PANELS: tuple[Panel, ...] = (
    Panel(
        "spend-by-window",
        "Spend per window by subscription (team), model and user, summed exactly in micro-units of the currency,"
        " with the part resting on estimates (streamed calls) and the unpriced tokens",
        "cost-summary-latest.kql",
        "| summarize CostMicros = sum(tolong(round(TotalCost * 1000000))),"
        " EstimatedCostMicros = sum(tolong(round(coalesce(EstimatedCost, real(0)) * 1000000))),"
        " TotalTokens = sum(TotalTokens), UnpricedTokens = sumif(TotalTokens, Unpriced), Requests = sum(Requests)"
        ' by WindowStart, SubscriptionId, Model, UserId, ApiId, Currency = coalesce(Currency, "")\n'
        "| order by WindowStart desc, SubscriptionId asc, Model asc, UserId asc",
        "table",
    ),
    Panel(
        "cost-over-time",
        "Cost over time by subscription and model",
        "cost-summary-latest.kql",
        # Unused PTU-hours belong to no subscription: their own series per model.
        '| summarize TotalCost = sum(TotalCost) by WindowStart, Series = strcat(iff(coalesce(CostBasis, "") =='
        ' "ptu_unused", "unused PTU", SubscriptionId), " / ", Model, " ", Currency)\n| order by WindowStart asc',
        "timechart",
    ),
    Panel(
        "spend-per-day",
        "Spend per day and subscription",
        "cost-totals-by-subscription-day.kql",
        '| extend SubscriptionId = iff(isempty(SubscriptionId), "(unused PTU capacity)", SubscriptionId)\n'
        "| extend Cost = todouble(CostMicros) / 1000000.0\n"
        "| project Day, SubscriptionId, Currency, Cost, TotalTokens, UnpricedTokens\n"
        "| order by Day desc, SubscriptionId asc",
        "table",
    ),
    Panel(
        "top-users",
        "Top users by cost",
        "cost-summary-latest.kql",
        '| where coalesce(CostBasis, "") != "ptu_unused"\n'
        "| summarize TotalCost = sum(TotalCost), TotalTokens = sum(TotalTokens), Requests = sum(Requests)"
        " by UserId, SubscriptionId, Currency\n| top 20 by TotalCost desc",
        "table",
    ),
    Panel(
        "tokens-by-type",
        "Tokens by type",
        "cost-summary-latest.kql",
        "| summarize UncachedPromptTokens = sum(PromptTokens) - sum(CachedPromptTokens),"
        " CachedPromptTokens = sum(CachedPromptTokens), CompletionTokens = sum(CompletionTokens) by WindowStart\n"
        "| order by WindowStart asc",
        "barchart",
    ),
    Panel(
        "estimated-share",
        "Cost resting on estimates (streamed calls: APIM estimates their tokens) and prompt tokens without"
        " a metered cache discount (priced at the input price)",
        "cost-summary-latest.kql",
        "| summarize TotalCost = sum(TotalCost), EstimatedCost = sum(coalesce(EstimatedCost, real(0))),"
        " TotalTokens = sum(TotalTokens), EstimatedTokens = sum(coalesce(EstimatedTotalTokens, long(0))),"
        # A PTU share has no per-token price, so no cache discount to miss.
        " PromptTokensCacheUnmetered = sumif(PromptTokens, coalesce(CacheDiscountMetered, false) == false"
        ' and not(coalesce(CostBasis, "") startswith "ptu"))'
        " by SubscriptionId, Currency\n"
        "| extend EstimatedCostPercent = iff(TotalCost == 0, 0.0, round(100.0 * EstimatedCost / TotalCost, 1))\n"
        "| order by EstimatedCost desc",
        "table",
    ),
    Panel(
        "cost-basis",
        "Cost by basis: tokens x per-token prices (usage), provisioned PTU-hours shared by their callers"
        " (ptu_allocated) and PTU-hours nobody called (ptu_unused)",
        "cost-summary-latest.kql",
        # Summaries written before CostBasis existed have none: they were usage-priced, or unpriced.
        '| summarize TotalCost = sum(TotalCost), TotalTokens = sum(TotalTokens), Requests = sum(Requests)'
        ' by CostBasis = iff(Unpriced, "unpriced", coalesce(CostBasis, "usage")), DeploymentType = coalesce('
        'DeploymentType, ""), Deployment, Model, Currency = coalesce(Currency, "")\n'
        "| order by TotalCost desc",
        "table",
    ),
    Panel(
        "gateway-vs-account-meters",
        "The gateway's tokens against the model accounts' own meters (bypass check) per final window and"
        " deployment: the windows where an account processed more than the gateway metered, against the strictest"
        " bypass rule's allowance, and the windows not compared (pending: the metrics throttled, unavailable or"
        " refused; unpublished)",
        "meter-comparison-latest.kql",
        '| where Status != "compared" or GapTokens > 0\n'
        "| extend OverAllowance = isnotnull(AllowanceTokens) and isnotnull(GapTokens) and todouble(GapTokens) >"
        " AllowanceTokens\n"
        "| project WindowStart, Deployment, Account, Status, Reason, AccountTokens, GatewayTokens,"
        " GatewayEstimatedTokens, GapTokens, AllowanceTokens, OverAllowance, Revision\n"
        "| order by WindowStart desc, Deployment asc",
        "table",
    ),
    Panel(
        "bill-vs-cost",
        "Our cost against the bill (Cost Management) per model account and settled day: the latest revision of each"
        " comparison, its likely cause, and the days still pending (Cost Management throttled or unavailable)",
        "bill-reconciliation-latest.kql",
        '| where MeterGroup == "all"\n'
        "| project Day, Account, Status, Currency, OurCost, BilledCost, GapCost, GapPercent, LikelyCause, Detail,"
        " Revision\n| order by Day desc, Account asc",
        "table",
    ),
    Panel(
        "unpriced-usage",
        "Unpriced usage (models missing from the price table)",
        "cost-summary-latest.kql",
        "| where Unpriced\n| summarize TotalTokens = sum(TotalTokens), Requests = sum(Requests),"
        " LastWindow = max(WindowStart) by Deployment, Model, SubscriptionId\n| order by TotalTokens desc",
        "table",
    ),
)


def panel(name: str) -> Panel:
    """The panel of that name (the local dashboard runs the workbook's own panels)."""
    found = next((candidate for candidate in PANELS if candidate.name == name), None)
    if found is None:
        raise WorkbookError(f"no workbook panel named {name!r} in tools/build_workbook.py PANELS")
    return found


class WorkbookError(ValueError):
    """A panel's query file does not fit the workbook (unknown file, parameter not bound)."""


def bind_time_range(text: str, source: str, bindings: Mapping[str, str] = TIME_BINDINGS) -> str:
    """Replace the values of the file's `let` parameter lines with the workbook's time range (or `bindings`:
    the local dashboard binds datetime literals)."""
    try:
        return bind_parameters(text, bindings, source=source)
    except KqlParameterError as exc:
        raise WorkbookError(f"{exc}: needed to bind the workbook time range") from exc


def panel_query(panel: Panel, kql_dir: Path = KQL_DIR, bindings: Mapping[str, str] = TIME_BINDINGS) -> str:
    path = kql_dir / panel.source
    if not path.is_file():
        raise WorkbookError(f"panel {panel.name!r}: {path} does not exist")
    query = bind_time_range(read_query(panel.source, kql_dir=kql_dir), panel.source, bindings).rstrip()
    return f"{query}\n{panel.tail}" if panel.tail else query


def build(panels: tuple[Panel, ...] = PANELS, kql_dir: Path = KQL_DIR) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {
            "type": 1,
            "name": "title",
            "content": {
                "json": "## APIM token costs\nCosts from `TokenCostSummary_CL` (latest complete revision of each "
                "window), the bypass check from `MeterComparison_CL` and the bill check from `BillReconciliation_CL` "
                "(latest revision of each comparison). Queries: `shared/logs/kql/` in the repository; this workbook "
                "is generated by `tools/build_workbook.py`."
            },
        },
        {
            "type": 9,
            "name": "parameters",
            "content": {
                "version": "KqlParameterItem/1.0",
                "style": "pills",
                "queryType": 0,
                "resourceType": "microsoft.operationalinsights/workspaces",
                "parameters": [
                    {
                        "id": "4f0c8d5e-5b1a-4a39-9d1e-6c1b2f3a7e01",
                        "version": "KqlParameterItem/1.0",
                        "name": "TimeRange",
                        "label": "Time range",
                        "type": 4,
                        "isRequired": True,
                        "value": {"durationMs": 604800000},
                        "typeSettings": {
                            "selectableValues": [
                                {"durationMs": 86400000},
                                {"durationMs": 259200000},
                                {"durationMs": 604800000},
                                {"durationMs": 2592000000},
                            ],
                            "allowCustom": True,
                        },
                    }
                ],
            },
        },
    ]
    for panel in panels:
        items.append(
            {
                "type": 3,
                "name": panel.name,
                "content": {
                    "version": "KqlItem/1.0",
                    "title": panel.title,
                    "query": panel_query(panel, kql_dir),
                    "size": 0,
                    "queryType": 0,
                    "resourceType": "microsoft.operationalinsights/workspaces",
                    "visualization": panel.visualization,
                    "timeContext": {"durationMs": QUERY_SCOPE_MS},
                },
            }
        )
    return {
        "version": "Notebook/1.0",
        "items": items,
        "$schema": "https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json",
    }


def render(workbook: dict[str, Any]) -> str:
    return json.dumps(workbook, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when infra/app/workbook.json is stale")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run .venv/bin/python -m tools.build_workbook", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({len(PANELS)} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
