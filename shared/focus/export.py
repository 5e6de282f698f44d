"""The FOCUS export after the bill check: each final UTC day's cost rows, one CSV blob a day.

One export:
  1. the days: the last FOCUS_EXPORT_DAYS UTC days that end at or before the costs progress watermark (every window
     of the day final: late metrics can no longer change it unless a run restates it); nothing before the first
     final window;
  2. their rows: the latest complete revision of TokenCostSummary_CL summed per day and caller
     (focus-cost-by-day.kql), one query; a day with any row of a window not yet final is provisional and is not
     written (logged): a FOCUS file is only ever final;
  3. each deployment's account (ResourceId, SubAccountId) and model version: ARM discovery and the deployment map,
     as the costs run prices them (shared/costs/deployments.py);
  4. each day as CSV (columns.py), written when its SHA-256 differs from the blob's: unchanged days are left as they
     are, a changed one (the costs run or `tools.reprice` restated it) is overwritten and logged as restated; a day
     with no rows has no file;
  5. logs one line. A failure (the query, Blob storage) is logged and reported, never raised: the alert rules after
     it still run, and the next costs run writes the days again.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from shared.config import FocusSettings
from shared.errors import AppError, ConfigError
from shared.focus import columns as focus
from shared.focus.store import BlobDayFiles, DayFiles
from shared.logs.kql import load_query
from shared.logs.query import query_table
from shared.logs.revisions import as_instant
from shared.money import from_micros
from shared.windows import start_of_day, start_of_month

if TYPE_CHECKING:
    from azure.monitor.query import LogsQueryClient

    from shared.costs.deployments import Deployment

log = logging.getLogger(__name__)

QUERY_FILE = "focus-cost-by-day.kql"
QUERY_COLUMNS = (
    "Day", "Deployment", "Model", "DeploymentType", "SubscriptionId", "UserId", "ApiId", "PriceVersion", "CostBasis",
    "Currency", "Unpriced", "Requests", "PromptTokens", "CachedPromptTokens", "CompletionTokens", "TotalTokens",
    "EstimatedRequests", "EstimatedPromptTokens", "EstimatedCompletionTokens", "EstimatedTotalTokens", "CostMicros",
    "InputCostMicros", "CachedCostMicros", "EstimatedCostMicros", "NotFinalRows", "Windows", "Revision",
)  # fmt: skip
# A few days' rows per caller: two minutes is ample, and it bounds what the export adds to the costs timer's worst case
# (tests/test_host_json.py; the query API's default is 3 minutes).
SERVER_TIMEOUT_SECONDS = 120
# BillingCurrency of a day whose rows are all unpriced (no currency known; every cost of it is 0).
FALLBACK_CURRENCY = "USD"


@dataclass
class FocusReport:
    """What one export did, for the log line and tests."""

    enabled: bool
    days: list[datetime] = field(default_factory=list)  # the days considered
    written: list[datetime] = field(default_factory=list)  # new files
    restated: list[datetime] = field(default_factory=list)  # files overwritten with other content
    unchanged: list[datetime] = field(default_factory=list)
    provisional: list[datetime] = field(default_factory=list)  # not written: a window not final yet
    empty: list[datetime] = field(default_factory=list)  # no rows, no file
    rows: int = 0
    cost_micros_by_currency: dict[str, int] = field(default_factory=dict)  # of the files written or kept
    problem: str = ""

    def line(self) -> str:
        if not self.enabled:
            return "focus export: off (FOCUS_EXPORT_CONTAINER empty)"
        if not self.days:
            return "focus export: no final day yet"

        def dates(days: Sequence[datetime]) -> str:
            return ", ".join(f"{day:%Y-%m-%d}" for day in days) or "none"

        costs = ", ".join(
            f"{from_micros(micros)} {currency}" for currency, micros in sorted(self.cost_micros_by_currency.items())
        )
        text = (
            f"focus export {dates(self.days[:1])}..{dates(self.days[-1:])}: written {dates(self.written)}; "
            f"restated {dates(self.restated)}; unchanged {dates(self.unchanged)}; provisional (not written) "
            f"{dates(self.provisional)}; no rows {dates(self.empty)}; {self.rows} rows, {costs or 'no cost'}"
        )
        return text + (f"; NOT WRITTEN: {self.problem}" if self.problem else "")


def export_days(final_through: datetime | None, days: int) -> list[datetime]:
    """The last `days` UTC days ending at or before `final_through` (the progress watermark), oldest first."""
    if final_through is None:
        return []
    last = start_of_day(final_through) - timedelta(days=1)
    return [last - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def blob_name(day: datetime) -> str:
    return f"focus/{day:%Y/%m}/focus-cost-{day:%Y-%m-%d}.csv"


def export_focus(
    settings: FocusSettings,
    final_through: datetime | None,
    *,
    query: LogsQueryClient | None = None,
    files: DayFiles | None = None,
    deployments: Sequence[Deployment] | None = None,
) -> FocusReport:
    """One export (module docstring). `query`, `files` and `deployments` (the discovered and mapped deployments) are
    built from the settings when not given."""
    report = FocusReport(enabled=bool(settings.container), days=export_days(final_through, settings.days))
    if not report.enabled or not report.days:
        log.info(report.line())
        return report
    try:
        _export(settings, report, query, files, deployments)
    except AppError as error:
        report.problem = str(error)
    (log.warning if report.problem or report.provisional else log.info)(report.line())
    return report


def _export(
    settings: FocusSettings,
    report: FocusReport,
    query: LogsQueryClient | None,
    files: DayFiles | None,
    deployments: Sequence[Deployment] | None,
) -> None:
    access = settings.azure
    credential = None if query is not None and files is not None else access.credential()
    query = query or access.logs_query_client(settings.query_endpoint, credential)
    rows = read_rows(query, settings.workspace_id, report.days[0], report.days[-1])
    by_day: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[start_of_day(as_instant(row["Day"]))].append(row)
    days = [day for day in report.days if by_day.get(day)]
    report.empty = [day for day in report.days if not by_day.get(day)]
    report.provisional = [day for day in days if any(int(row["NotFinalRows"] or 0) for row in by_day[day])]
    final = [day for day in days if day not in report.provisional]
    if not final:
        return
    known = _deployments(settings) if deployments is None else deployments
    files = files or BlobDayFiles.open(
        settings.container, connection_string=settings.storage_connection_string, endpoint=settings.blob_endpoint,
        credential=credential if settings.blob_endpoint else None, connection_verify=access.connection_verify,
    )  # fmt: skip
    for day in final:
        day_rows = focus_rows(by_day[day], known, settings.billing_account_id)
        content = csv_content(day_rows)
        digest = hashlib.sha256(content).hexdigest()
        for row in by_day[day]:
            currency = str(row["Currency"] or "")
            if currency:
                report.cost_micros_by_currency[currency] = report.cost_micros_by_currency.get(currency, 0) + int(
                    row["CostMicros"] or 0
                )
        report.rows += len(day_rows)
        stored = files.stored(blob_name(day))
        if stored is not None and stored.sha256 == digest:
            report.unchanged.append(day)
            continue
        restated = stored is not None
        revision = max(as_instant(row["Revision"]) for row in by_day[day])
        files.write(blob_name(day), content, {
            "sha256": digest, "focusversion": focus.FOCUS_VERSION, "day": f"{day:%Y-%m-%d}",
            "revision": f"{revision:%Y-%m-%dT%H:%M:%S.%fZ}", "restated": "true" if restated else "false",
        })  # fmt: skip
        (report.restated if restated else report.written).append(day)


def read_rows(
    client: LogsQueryClient, workspace_id: str, first_day: datetime, last_day: datetime
) -> list[dict[str, Any]]:
    """The query's rows for the days first..last as column -> value. Raises QueryError."""
    end = last_day + timedelta(days=1)
    text = load_query(QUERY_FILE, {"start_time": first_day, "end_time": end})
    # Summaries carry TimeGenerated = their revision time, after their window: ask up to now.
    found = query_table(
        client, workspace_id, "focus export: cost per day and caller", text, (first_day, max(end, datetime.now(UTC))),
        QUERY_COLUMNS, server_timeout_seconds=SERVER_TIMEOUT_SECONDS,
    )  # fmt: skip
    return [dict(zip(QUERY_COLUMNS, row, strict=True)) for row in found]


def _deployments(settings: FocusSettings) -> list[Deployment]:
    """The deployments as the costs run sees them: the accounts' (ARM) under the file's (deployments.json)."""
    from shared.costs.deployments import ArmDeploymentDiscovery, load_deployment_map

    file_map = load_deployment_map(settings.deployment_map_path)
    if not settings.model_accounts:
        return list(file_map.entries)
    access = settings.azure
    credential = access.credential()
    discovered = ArmDeploymentDiscovery(
        settings.model_accounts,
        lambda subscription: access.cognitive_services_client(
            settings.resource_manager_endpoint, subscription, credential
        ),
    ).deployments()
    # The file's entry gives the model (and maybe version); the account that serves the name gives the resource.
    return [*file_map.with_discovered(discovered).entries, *discovered]


def focus_rows(
    rows: Sequence[Mapping[str, Any]], deployments: Sequence[Deployment], billing_account_id: str | None
) -> list[dict[str, focus.Cell]]:
    """One day's query rows as FOCUS rows (columns.py), in the query's order."""
    from shared.azure_clients import ModelAccount

    model_of: dict[str, Deployment] = {}
    account_of: dict[str, ModelAccount] = {}
    for item in deployments:
        model_of.setdefault(item.name.casefold(), item)
        with contextlib.suppress(ValueError):  # a deployments.json entry: no account
            account_of.setdefault(item.name.casefold(), ModelAccount.parse(item.source))
    currencies = Counter(str(row["Currency"]) for row in rows if row["Currency"])
    day_currency = currencies.most_common(1)[0][0] if currencies else FALLBACK_CURRENCY
    # A deployment in no account (deployments.json's own) bills to the day's accounts' subscription; with none known
    # FOCUS_BILLING_ACCOUNT_ID must say it (BillingAccountId allows no null, and no placeholder).
    subscriptions = Counter(
        f"/subscriptions/{account_of[str(row['Deployment'] or '').casefold()].subscription_id}"
        for row in rows
        if str(row["Deployment"] or "").casefold() in account_of
    )
    day_account = billing_account_id or (subscriptions.most_common(1)[0][0] if subscriptions else None)
    if day_account is None:
        raise ConfigError(
            "app setting FOCUS_BILLING_ACCOUNT_ID is empty and no deployment of the day is in an account of "
            "COST_MODEL_ACCOUNTS; expected the billing account id the FOCUS rows belong to"
        )
    out = []
    for row in rows:
        day = start_of_day(as_instant(row["Day"]))
        deployment = str(row["Deployment"] or "")
        known = model_of.get(deployment.casefold())
        account = account_of.get(deployment.casefold())
        subscription = f"/subscriptions/{account.subscription_id}" if account else None
        estimated_micros = int(row["EstimatedCostMicros"] or 0)
        total_micros = int(row["CostMicros"] or 0)
        unpriced = bool(row["Unpriced"])
        model = str(row["Model"] or deployment)
        month = start_of_month(day)
        next_month = (month + timedelta(days=32)).replace(day=1)
        caller: dict[str, focus.Cell] = {
            "BillingAccountId": billing_account_id or subscription or day_account,
            "BillingAccountName": None,
            "BillingCurrency": str(row["Currency"] or "") or day_currency,
            "BillingPeriodEnd": _instant(next_month),
            "BillingPeriodStart": _instant(month),
            "ChargeCategory": "Usage",
            "ChargeClass": None,  # a restated day replaces its file; no invoiced period is corrected
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": _instant(day + timedelta(days=1)),
            "ChargePeriodStart": _instant(day),
            "InvoiceIssuerName": focus.PROVIDER,
            "PricingCategory": "Standard",
            "ProviderName": focus.PROVIDER,
            "PublisherName": focus.PROVIDER,
            "ResourceId": account.resource_id.lower() if account else None,  # Cost Management's ids are lowercase
            "ResourceName": account.name if account else None,
            "ResourceType": focus.RESOURCE_TYPE if account else None,
            "ServiceCategory": focus.SERVICE_CATEGORY,
            "ServiceName": focus.SERVICE_NAME,
            "ServiceSubcategory": focus.SERVICE_SUBCATEGORY,
            "SubAccountId": subscription,
            "x_CostSource": focus.COST_SOURCE,
            "x_ResourceType": focus.X_RESOURCE_TYPE if account else None,
            "x_Deployment": deployment or "(none)",
            "x_Model": model or "(none)",
            "x_ModelVersion": (known.model_version if known else None) or None,
            "x_DeploymentType": str(row["DeploymentType"] or "") or None,
            "x_ApimSubscriptionId": str(row["SubscriptionId"] or "") or None,
            "x_UserId": str(row["UserId"] or "") or None,
            "x_ApiId": str(row["ApiId"] or "") or None,
            # The part of the caller's cost resting on APIM's estimates (streamed calls); null when there is no cost.
            "x_EstimatedShare": _decimal(round(Decimal(estimated_micros) / Decimal(total_micros), 6))
            if total_micros
            else None,
            "x_Unpriced": "true" if unpriced else "false",
            "x_PriceVersion": str(row["PriceVersion"] or "") or None,
            "x_CostBasis": str(row["CostBasis"] or "") or None,
            "x_Windows": str(int(row["Windows"] or 0)),
            "x_Revision": _instant(as_instant(row["Revision"]), micro=True),
        }
        for index, part in enumerate(_meter_parts(row)):
            values = {**caller, **_part_columns(part, model, deployment, unpriced)}
            # The caller's day figures sit on its first row only (0 on its other meters): every column sums.
            first = index == 0
            values["x_Requests"] = str(int(row["Requests"] or 0) if first else 0)
            values["x_EstimatedRequests"] = str(int(row["EstimatedRequests"] or 0) if first else 0)
            values["x_EstimatedCost"] = _decimal(from_micros(estimated_micros if first else 0))
            values = {name: values[name] for name in focus.COLUMN_NAMES}
            focus.check_row(values)
            out.append(values)
    return out


@dataclass(frozen=True)
class _MeterPart:
    """One caller's day on one meter: a token kind at its own price, or its share of a provisioned deployment."""

    kind: str | None  # the catalog's token kind (input, cached_input, output); None: a PTU share
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    estimated_tokens: int
    cost_micros: int

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _meter_parts(row: Mapping[str, Any]) -> list[_MeterPart]:
    """A query row split the way Azure meters a model's tokens: uncached input, cached input and output, each with the
    cost the costs run gave it (PromptCost, CachedPromptCost; output takes the rest of TotalCost, which the costs run
    rounded from the unrounded sum, so the parts add up to the caller's cost exactly). Kinds without tokens or cost are
    left out, but a caller keeps one row. A provisioned (PTU) row stays whole: its cost is PTU-hours, not tokens."""
    prompt, cached = int(row["PromptTokens"] or 0), int(row["CachedPromptTokens"] or 0)
    completion = int(row["CompletionTokens"] or 0)
    total = int(row["CostMicros"] or 0)
    if str(row["CostBasis"] or "").startswith("ptu"):
        estimated = int(row["EstimatedTotalTokens"] or 0)
        return [_MeterPart(None, prompt, cached, completion, estimated, total)]
    input_micros, cached_micros = int(row["InputCostMicros"] or 0), int(row["CachedCostMicros"] or 0)
    parts = [
        _MeterPart("input", prompt - cached, 0, 0, int(row["EstimatedPromptTokens"] or 0), input_micros),
        _MeterPart("cached_input", cached, cached, 0, 0, cached_micros),
        _MeterPart("output", 0, 0, completion, int(row["EstimatedCompletionTokens"] or 0),
                   total - input_micros - cached_micros),
    ]  # fmt: skip
    return [part for part in parts if part.tokens or part.cost_micros] or parts[:1]


# A token meter's unit of measure in Cost Management: "1M" (the Retail Prices API's unitOfMeasure of the
# "... 1M Tokens" meters, tests/costs/fixtures/retail-prices), which microsoft/finops-toolkit's
# src/open-data/PricingUnits.csv reads as a block of 1,000,000 units; PricingQuantity is the usage divided by the
# block size (its data dictionary, x_PricingBlockSize), and FOCUS 1.2 writes such a unit "1000000 Tokens"
# (specification/attributes/unit_format.md: "<unit-quantity> <plural-units>").
TOKENS_PER_PRICING_UNIT = 1_000_000
TOKEN_PRICING_UNIT = "1000000 Tokens"
# A list unit price is our cost / PricingQuantity, kept to this many decimals: times PricingQuantity it gives the
# cost again to well under a micro-unit for any day's tokens below 10^12.
UNIT_PRICE_DECIMAL_PLACES = 10


def _part_columns(part: _MeterPart, model: str, deployment: str, unpriced: bool) -> dict[str, focus.Cell]:
    """The columns that differ between one caller's meters: quantities, prices, costs, tokens by kind."""
    cost = _decimal(from_micros(part.cost_micros))
    unit_price: Decimal | None
    if part.kind is None:
        # A PTU share: one unit of the caller's share of the deployment's PTU-hours that day, priced at its cost
        # (the PTU-hour price and capacity are in the price table of x_PriceVersion and ARM; the share rests on tokens).
        quantity, unit, unit_price = Decimal(1), "Units", Decimal(cost)
        description = f"{model} provisioned throughput share through API Management, deployment {deployment}"
    else:
        quantity = Decimal(part.tokens).scaleb(-6)
        unit = TOKEN_PRICING_UNIT
        # The price per 1M tokens the costs run charged: exactly the price table's, unless the run's per-window
        # rounding to micro-units moved it (by at most windows x 0.5 micro-units / tokens). Unpriced usage has no
        # price: null, never a guessed 0 (x_Unpriced says why).
        unit_price = (
            None
            if unpriced or not part.tokens
            else round(Decimal(part.cost_micros) / Decimal(part.tokens), UNIT_PRICE_DECIMAL_PLACES)
        )
        word = {"input": "input", "cached_input": "cached input", "output": "output"}[part.kind]
        description = f"{model} {word} tokens through API Management, deployment {deployment}"
    price = None if unit_price is None else _decimal(unit_price.normalize() if unit_price else Decimal(0))
    return {
        "BilledCost": cost,
        "ChargeDescription": description,
        "ConsumedQuantity": str(part.tokens),
        "ConsumedUnit": "Tokens",
        "ContractedCost": cost,
        "ContractedUnitPrice": price,
        "EffectiveCost": cost,
        "ListCost": cost,
        "ListUnitPrice": price,
        "PricingQuantity": _decimal(quantity),
        "PricingUnit": unit,
        "x_TokenKind": part.kind,
        "x_PromptTokens": str(part.prompt_tokens),
        "x_CachedPromptTokens": str(part.cached_tokens),
        "x_CompletionTokens": str(part.completion_tokens),
        "x_TotalTokens": str(part.tokens),
        "x_EstimatedTokens": str(part.estimated_tokens),
        "x_UnpricedTokens": str(part.tokens if unpriced else 0),
    }


def csv_content(rows: Sequence[Mapping[str, focus.Cell]]) -> bytes:
    """The day's file: a header of the column names, then the rows; null is an empty field, UTF-8, CRLF line ends
    (RFC 4180); the same rows always give the same bytes."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(focus.COLUMN_NAMES)
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name in focus.COLUMN_NAMES])
    return buffer.getvalue().encode("utf-8")


def _decimal(amount: Decimal) -> str:
    """FOCUS Numeric Format: plain digits and one decimal point, no exponent, no plus sign."""
    return f"{amount:f}"


def _instant(moment: datetime, *, micro: bool = False) -> str:
    """FOCUS Date/Time Format: extended ISO 8601 in UTC with a Z ('YYYY-MM-DDTHH:mm:ssZ')."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")
