"""Every app setting the function app reads: declared once, parsed into typed sections.

Settings are environment variables (Functions app settings; `local.settings.json` "Values"
locally). Each is declared once in SETTINGS: its name, the section fields it fills, its parser
(which is its check), default, meaning and what is expected. That one declaration feeds parsing,
validation and the error messages; the README table, local.settings.sample.json, infra and
tools/write_local_settings.py list the same names, and tests keep them in step.

    Settings
    ├── schedules  Schedules        when the two timers run
    ├── traffic    TrafficSettings  the synthetic traffic (shared/traffic/), persona keys included
    ├── costs      CostSettings     the costs run (shared/costs/)
    ├── alerts     AlertSettings    the alert run after it (shared/alerts/, shared/email/)
    ├── meters     MeterSettings    the bypass check between them (shared/meters/)
    ├── bill       BillSettings     the daily check against the bill (shared/billing/), after the bypass check
    ├── focus      FocusSettings    the daily FOCUS export to Blob storage (shared/focus/), after the bill check
    └── azure      AzureAccess      managed identity and extra CAs; costs, meters and alerts hold the same one
                                    (defined in azure_clients.py beside the clients it builds)

A setting some sections share (the workspace, the ingestion endpoint, the state storage, the
window width) is still declared once and fills each of those sections' fields. The library takes
its section and never reads the environment: this module is the one reader, including the
personas' subscription keys. Relative paths start at the app root and are resolved here, once;
the sections hold absolute paths. A missing or bad value fails at start with the setting's name,
the value (hidden for secrets) and what is expected; every problem is reported at once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

from shared.azure_clients import AzureAccess, ModelAccount
from shared.errors import ConfigError
from shared.json_input import Check, Invalid, email_address, number, share, whole
from shared.windows import divides_a_day

# Where function_app.py is: relative paths in settings start here, in Azure and locally.
APP_ROOT = Path(__file__).resolve().parents[1]

MetricsSchema = Literal["AppMetrics", "customMetrics"]
BillScope = Literal["resourceGroup", "subscription"]
Delivery = Literal["smtp", "acs"]
T = TypeVar("T")

_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _schedule(value: str) -> str:
    # Azure Functions NCRONTAB: six fields, seconds first. Parsed fully by the host; we only
    # catch the common mistake of a five-field (Unix cron) expression early.
    parts = value.split()
    if len(parts) != 6 or not all(_NCRONTAB_FIELD.match(part) for part in parts):
        raise Invalid("an NCRONTAB expression with six fields, seconds first, e.g. '0 */5 * * * *'")
    return " ".join(parts)


def _url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("not an absolute http(s) URL")  # the setting's expectation gives its own example
    return value.rstrip("/")


def _checked(convert: Callable[[str], Any], check: Check[T]) -> Callable[[str], T]:
    """A setting's text converted (int, Decimal) and held to the same Check a JSON input field uses
    (shared/json_input.py), so a bound reads and words the same in settings and in files."""

    def parse(value: str) -> T:
        try:
            converted = convert(value)
        except (ValueError, ArithmeticError):
            raise Invalid(check.expected) from None
        return check(converted)

    return parse


def _as_float(parse: Callable[[str], Decimal], expected: str) -> Callable[[str], float]:
    """The checked Decimal as the float the library uses; one too large for a float ("1e400", finite
    as a Decimal) would become inf (a sleep(inf)), so it is refused as out of range."""

    def to_float(value: str) -> float:
        number = float(parse(value))
        if not math.isfinite(number):
            raise Invalid(expected)
        return number

    return to_float


_positive_int = _checked(int, whole(above=0))
_non_negative_int = _checked(int, whole(minimum=0))
_POSITIVE, _NON_NEGATIVE = number(above=0), number(minimum=0)
_positive_float = _as_float(_checked(Decimal, _POSITIVE), _POSITIVE.expected)
_non_negative_float = _as_float(_checked(Decimal, _NON_NEGATIVE), _NON_NEGATIVE.expected)
_ratio = _as_float(_checked(Decimal, share), share.expected)


def _window_minutes(value: str) -> int:
    number = int(value)
    if not divides_a_day(number):
        raise Invalid("a whole number of minutes that divides a day (1440) evenly, e.g. 15, 30, 60, 1440")
    return number


def _metrics_schema(value: str) -> MetricsSchema:
    if value not in ("AppMetrics", "customMetrics"):
        raise Invalid("AppMetrics (workspace schema) or customMetrics (classic Application Insights schema)")
    return "AppMetrics" if value == "AppMetrics" else "customMetrics"


def _bill_scope(value: str) -> BillScope:
    if value not in ("resourceGroup", "subscription"):
        raise Invalid("resourceGroup (the model accounts' resource groups) or subscription (their subscriptions)")
    return "resourceGroup" if value == "resourceGroup" else "subscription"


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise Invalid("true or false")
    return lowered == "true"


def _delivery(value: str) -> Delivery:
    if value not in ("smtp", "acs"):
        raise Invalid("smtp (any SMTP relay) or acs (Azure Communication Services Email)")
    return "smtp" if value == "smtp" else "acs"


def _email_address(value: str) -> str:
    # The recipients' check: a line break or a second address here became a header of every alert email.
    try:
        return email_address(value)
    except Invalid:
        raise Invalid("an email address, e.g. ai-gateway-alerts@contoso.com") from None


def _app_path(value: str) -> Path:
    if not value:
        raise ValueError("empty")  # the setting's expectation names the file it wants
    path = Path(value)
    return path if path.is_absolute() else APP_ROOT / path


def _optional_app_path(value: str) -> Path | None:
    return _app_path(value) if value else None


def app_relative(path: Path) -> str:
    """A path as written in settings: relative to the app root when inside it (for messages and emails)."""
    return str(path.relative_to(APP_ROOT)) if path.is_relative_to(APP_ROOT) else str(path)


def _model_accounts(value: str) -> tuple[ModelAccount, ...]:
    accounts: list[ModelAccount] = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            accounts.append(ModelAccount.parse(part))
        except ValueError as error:
            raise Invalid(f"comma-separated account resource ids; {error}") from None
    return tuple(dict.fromkeys(accounts))  # an account listed twice is read once


def _optional_url(value: str) -> str:
    # Shown as a link in every alert email: a web address, never javascript: or data: (the HTML escapes it,
    # but a mail client follows it as written).
    return _url(value) if value else ""


def _optional_int(value: str) -> int | None:
    return int(value) if value else None


def _text(value: str) -> str:
    return value


# Azure's container names: 3-63 characters, lowercase letters, digits and single hyphens, starting and ending with a
# letter or digit (https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata,
# "Container names"). Azurite accepts more, so the check is here: a name Azure refuses fails at start, not in Azure.
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")


def _optional_container(value: str) -> str:
    if value and not _CONTAINER.match(value):
        raise Invalid(
            "empty (no export) or a blob container name: 3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit, e.g. focus-exports"
        )
    return value


REPORT_PERIODS = ("weekly", "monthly")


def _report_periods(value: str) -> tuple[str, ...]:
    """REPORT_PERIODS: "none", or weekly and/or monthly, comma-separated (shared/reports/)."""
    if value == "none":
        return ()
    periods = [part.strip() for part in value.split(",")]
    if not periods or any(period not in REPORT_PERIODS for period in periods) or len(set(periods)) != len(periods):
        raise Invalid("weekly, monthly, weekly,monthly (comma-separated, each once) or none")
    return tuple(period for period in REPORT_PERIODS if period in periods)


def _optional_text(value: str) -> str | None:
    return value or None


@dataclass(frozen=True)
class Setting:
    name: str
    # The "section.field"s it fills: one, or several for what sections share (the workspace, ...).
    feeds: tuple[str, ...]
    parse: Callable[[str], Any]  # the check too: raises ValueError("what is expected") on a bad value
    default: str | None  # None: required
    meaning: str
    expected: str
    secret: bool = False  # never echo the value in an error message


_SCHEDULE = "an NCRONTAB expression with six fields, seconds first, e.g. '0 */5 * * * *'"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TRAFFIC_SCHEDULE",
        ("schedules.traffic",),
        _schedule,
        "0 */5 * * * *",
        "When the traffic timer runs (NCRONTAB, six fields, seconds first).",
        _SCHEDULE,
    ),
    Setting(
        "COST_SCHEDULE",
        ("schedules.costs",),
        _schedule,
        "0 */15 * * * *",
        "When the costs timer runs (NCRONTAB, six fields, seconds first).",
        _SCHEDULE,
    ),
    Setting(
        "GATEWAY_URL",
        ("traffic.gateway_url",),
        _url,
        None,
        "Base URL of the API Management gateway (the traffic goes to <GATEWAY_URL>/inference).",
        "an absolute http(s) URL, e.g. https://my-apim.azure-api.net",
    ),
    # 2024-10-21, the last dated GA version, predates the reasoning models every current chat model
    # is: its spec has no stream_options/include_usage (the personas send it), no cached_tokens, no
    # reasoning_effort (Azure/azure-rest-api-specs .../AzureOpenAI/inference/stable/2024-10-21/
    # inference.json); the reasoning-models page names 2025-04-01-preview (or the v1 API) for them
    # (MicrosoftDocs/azure-ai-docs articles/ai-foundry/openai/how-to/reasoning.md, "API Version").
    Setting(
        "OPENAI_API_VERSION",
        ("traffic.openai_api_version",),
        _text,
        "2025-04-01-preview",
        "Azure OpenAI data-plane api-version the synthetic clients send.",
        "an api-version string such as 2025-04-01-preview",
    ),
    Setting(
        "TRAFFIC_PERSONAS_FILE",
        ("traffic.personas_file",),
        _app_path,
        "shared/traffic/personas.sample.json",
        "Persona file of the synthetic traffic; relative paths start at the app root.",
        "the path of a persona JSON file",
    ),
    Setting(
        "TRAFFIC_SEED",
        ("traffic.seed",),
        _optional_int,
        "",
        "Seed of the synthetic traffic; empty: a fresh seed each run (logged, so a run can be replayed).",
        "empty or a whole number",
    ),
    # At least 1 (the traffic run's own class once allowed 0): a run that sends nothing only uploads
    # an empty record. To pause the traffic, disable the timer (AzureWebJobs.traffic.Disabled=true).
    Setting(
        "TRAFFIC_REQUESTS_PER_RUN",
        ("traffic.requests_per_run",),
        _positive_int,
        "20",
        "Chat completions planned per traffic run.",
        "a whole number greater than 0",
    ),
    Setting(
        "TRAFFIC_CONCURRENCY",
        ("traffic.concurrency",),
        _positive_int,
        "16",
        "Most synthetic calls in flight at once.",
        "a whole number greater than 0",
    ),
    Setting(
        "TRAFFIC_TIME_BUDGET_SECONDS",
        ("traffic.time_budget_seconds",),
        _positive_float,
        "240",
        "A traffic run, upload included, ends within this; keep it below functionTimeout and the schedule period.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "TRAFFIC_REQUEST_TIMEOUT_SECONDS",
        ("traffic.request_timeout_seconds",),
        _positive_float,
        "30",
        "Timeout of one synthetic call attempt.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "TRAFFIC_MAX_RETRIES",
        ("traffic.max_retries",),
        _non_negative_int,
        "2",
        "Retries of a synthetic call on 408/409/429/5xx, timeouts and connection errors (Retry-After honoured).",
        "a whole number, 0 or more",
    ),
    Setting(
        "TRAFFIC_FAILURE_WARN_RATIO",
        ("traffic.failure_warn_ratio",),
        _ratio,
        "0.05",
        "A traffic run logs a warning when more than this share of its sent calls failed.",
        "a number from 0 to 1",
    ),
    Setting(
        "TRAFFIC_INGESTION_STREAM",
        ("traffic.ingestion_stream",),
        _text,
        "Custom-SyntheticTraffic_CL",
        "Data collection rule stream of the synthetic-traffic ground truth.",
        "a DCR stream name",
    ),
    Setting(
        "LOGS_INGESTION_ENDPOINT",
        (
            "traffic.ingestion_endpoint",
            "costs.ingestion_endpoint",
            "meters.ingestion_endpoint",
            "bill.ingestion_endpoint",
        ),
        _url,
        None,
        "Logs ingestion endpoint of the data collection rule the app uploads to.",
        "an absolute http(s) URL, e.g. https://my-dcr-abcd.westeurope-1.ingest.monitor.azure.com",
    ),
    Setting(
        "LOGS_INGESTION_RULE_ID",
        ("traffic.ingestion_rule_id", "costs.ingestion_rule_id", "meters.ingestion_rule_id", "bill.ingestion_rule_id"),
        _text,
        None,
        "Immutable id of that data collection rule.",
        "the DCR immutable id, dcr-<32 hex digits>",
    ),
    Setting(
        "LOG_ANALYTICS_WORKSPACE_ID",
        ("costs.workspace_id", "alerts.workspace_id", "meters.workspace_id", "bill.workspace_id", "focus.workspace_id"),
        _text,
        None,
        "Workspace (customer) id of the Log Analytics workspace holding the token metrics.",
        "the workspace id (a GUID in Azure)",
    ),
    Setting(
        "LOG_ANALYTICS_ENDPOINT",
        (
            "costs.query_endpoint",
            "alerts.query_endpoint",
            "meters.query_endpoint",
            "bill.query_endpoint",
            "focus.query_endpoint",
        ),
        _url,
        "https://api.loganalytics.io",
        "Log Analytics query API endpoint (sovereign clouds and the local stand-in differ).",
        "an absolute http(s) URL such as https://api.loganalytics.io",
    ),
    Setting(
        "COST_WINDOW_MINUTES",
        ("costs.window_minutes", "alerts.window_minutes", "meters.window_minutes"),
        _window_minutes,
        "60",
        "Width of a cost summary window in minutes.",
        "a whole number of minutes that divides 1440",
    ),
    Setting(
        "COST_METRICS_SCHEMA",
        ("costs.metrics_schema",),
        _metrics_schema,
        "AppMetrics",
        "Which table holds the token metrics: AppMetrics (workspace) or customMetrics (Application Insights).",
        "AppMetrics or customMetrics",
    ),
    Setting(
        "COST_METRICS_RESOURCE_ID",
        ("costs.metrics_resource_id",),
        _optional_text,
        "",
        "Application Insights resource id; when set, customMetrics is queried on that resource.",
        "empty or an Azure resource id",
    ),
    Setting(
        "COST_INGESTION_DELAY_MINUTES",
        ("costs.ingestion_delay_minutes",),
        _non_negative_int,
        "15",
        "A window becomes final this long after its end (Azure Monitor ingestion delay allowance).",
        "a whole number of minutes, 0 or more",
    ),
    Setting(
        "COST_RECOMPUTE_WINDOWS",
        ("costs.recompute_windows",),
        _non_negative_int,
        "3",
        "Final windows recomputed by every run so late metrics land in their window; also the first run's lookback.",
        "a whole number, 0 or more",
    ),
    Setting(
        "COST_PRICE_TABLE",
        ("costs.price_table_path",),
        _app_path,
        "shared/costs/prices/catalog.json",
        "Versioned price table: a catalog (python -m tools.prices), a native table or LiteLLM's map; "
        "relative paths start at the app root.",
        "the path of a price table JSON file",
    ),
    Setting(
        "COST_DEPLOYMENT_MAP",
        ("costs.deployment_map_path", "focus.deployment_map_path"),
        _optional_app_path,
        "shared/costs/prices/deployments.json",
        "Deployment → model map; empty: deployment names are model names. Relative paths start at the app root.",
        "empty or the path of a deployment map JSON file",
    ),
    Setting(
        "COST_MODEL_ACCOUNTS",
        ("costs.model_accounts", "meters.model_accounts", "bill.model_accounts", "focus.model_accounts"),
        _model_accounts,
        "",
        "ARM resource ids (comma-separated) of the Foundry / Azure OpenAI accounts behind the gateway: each costs run "
        "lists their deployments (model, version, SKU) and reads their token metrics for the bypass check with the "
        "managed identity (accounts/deployments/read and Microsoft.Insights/metrics/read on each), and whose bill the "
        "bill check reads from Cost Management. Empty: no discovery (the deployment map alone), no bypass check and "
        "no bill check.",
        "empty or comma-separated /subscriptions/<id>/resourceGroups/<group>/providers/"
        "Microsoft.CognitiveServices/accounts/<name>",
    ),
    Setting(
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        (
            "costs.resource_manager_endpoint",
            "meters.resource_manager_endpoint",
            "bill.resource_manager_endpoint",
            "focus.resource_manager_endpoint",
        ),
        _url,
        "https://management.azure.com",
        "Azure Resource Manager endpoint the deployments and the accounts' metrics are read at (sovereign clouds and "
        "the stand-in differ).",
        "an absolute http(s) URL such as https://management.azure.com",
    ),
    Setting(
        "COST_DCR_STREAM",
        ("costs.ingestion_stream",),
        _text,
        "Custom-TokenCostSummary_CL",
        "Data collection rule stream of the cost summaries.",
        "a DCR stream name",
    ),
    Setting(
        "COST_STATE_CONNECTION_STRING",
        (
            "costs.state_connection_string",
            "alerts.state_connection_string",
            "bill.state_connection_string",
            "focus.storage_connection_string",
        ),
        _optional_text,
        "",
        "Storage connection string for the costs progress and the FOCUS export (Azurite locally); empty in Azure.",
        "empty or a storage connection string",
        secret=True,  # a connection string may carry the account key
    ),
    Setting(
        "COST_STATE_TABLE_ENDPOINT",
        ("costs.state_table_endpoint", "alerts.state_table_endpoint", "bill.state_table_endpoint"),
        _optional_text,
        "",
        "Table service endpoint used with the managed identity in Azure.",
        "empty or https://<account>.table.core.windows.net",
    ),
    Setting(
        "COST_STATE_TABLE",
        ("costs.state_table_name", "bill.state_table_name"),
        _text,
        "CostProgress",
        "Table holding which cost windows are final.",
        "a table name (letters and digits)",
    ),
    Setting(
        "COST_UPLOAD_CHUNK_ROWS",
        ("costs.upload_chunk_rows",),
        _positive_int,
        "5000",
        "Summary rows per upload chunk.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_UPLOAD_ATTEMPTS",
        ("costs.upload_attempts", "meters.upload_attempts", "bill.upload_attempts"),
        _positive_int,
        "3",
        "Attempts per failed upload chunk before the window is left for the next run.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_QUERY_ATTEMPTS",
        ("costs.query_attempts",),
        _positive_int,
        "3",
        "Attempts per usage query on partial or failed results.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_RETRY_DELAY_SECONDS",
        ("costs.retry_delay_seconds", "meters.retry_delay_seconds", "bill.retry_delay_seconds"),
        _non_negative_float,
        "5",
        "Pause between query or upload attempts (and metrics reads answered without Retry-After).",
        "a number of seconds, 0 or more",
    ),
    Setting(
        "BYPASS_METRICS_ATTEMPTS",
        ("meters.attempts",),
        _positive_int,
        "3",
        "Attempts per account metrics read that is throttled (429) or fails (5xx, timeout) in the bypass check.",
        "a whole number greater than 0",
    ),
    # Within the costs timer: host.json's functionTimeout counts it (tests/test_host_json.py).
    Setting(
        "BYPASS_METRICS_BUDGET_SECONDS",
        ("meters.budget_seconds",),
        _positive_float,
        "60",
        "Most seconds the bypass check spends reading the accounts' metrics, waits included; a Retry-After past "
        "it leaves the comparison pending (logged and written) for the next run.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "BYPASS_DCR_STREAM",
        ("meters.ingestion_stream",),
        _text,
        "Custom-MeterComparison_CL",
        "Data collection rule stream of the bypass check's comparisons (each final window x deployment, compared or "
        "pending).",
        "a DCR stream name",
    ),
    # Cost Management's data "is typically available ... within 8-24 hours. For pay-as-you-go subscriptions, it
    # could take up to 72 hours" (MicrosoftDocs/azure-docs articles/cost-management-billing/costs/
    # understand-cost-mgt-data.md, "Cost and usage data updates and retention"): a day is compared once settled,
    # and the last BILL_CHECK_DAYS settled days are read again, so rows that arrive later restate their day.
    Setting(
        "BILL_CHECK_SCOPE",
        ("bill.scope",),
        _bill_scope,
        "resourceGroup",
        "Cost Management scope the bill check queries: the resource group of each model account, or its subscription "
        "(the app's identity needs Cost Management Reader there).",
        "resourceGroup or subscription",
    ),
    Setting(
        "BILL_CHECK_SETTLE_HOURS",
        ("bill.settle_hours",),
        _non_negative_float,
        "24",
        "A UTC day is compared with the bill once this many hours have passed since its end (Cost Management lags "
        "8-24 hours, up to 72 for pay-as-you-go).",
        "a number of hours, 0 or more",
    ),
    Setting(
        "BILL_CHECK_DAYS",
        ("bill.days",),
        _positive_int,
        "3",
        "Settled UTC days read again by every bill check, so late billing rows restate their day.",
        "a whole number of days greater than 0",
    ),
    Setting(
        "BILL_CHECK_INTERVAL_HOURS",
        ("bill.interval_hours",),
        _non_negative_float,
        "24",
        "Hours between two bill checks (Cost Management refreshes every four hours and asks callers to query at most "
        "once a day); a pending check is retried by the next costs run.",
        "a number of hours, 0 or more",
    ),
    Setting(
        "BILL_CHECK_ATTEMPTS",
        ("bill.attempts",),
        _positive_int,
        "3",
        "Attempts per Cost Management query that is throttled (429) or fails (5xx, timeout).",
        "a whole number greater than 0",
    ),
    # Within the costs timer: host.json's functionTimeout counts it (tests/test_host_json.py).
    Setting(
        "BILL_CHECK_BUDGET_SECONDS",
        ("bill.budget_seconds",),
        _positive_float,
        "60",
        "Most seconds the bill check spends on Cost Management, waits included; a wait past it leaves the comparison "
        "pending (logged and written) for the next costs run.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "BILL_DCR_STREAM",
        ("bill.ingestion_stream",),
        _text,
        "Custom-BillReconciliation_CL",
        "Data collection rule stream of the bill comparisons.",
        "a DCR stream name",
    ),
    Setting(
        "FOCUS_EXPORT_CONTAINER",
        ("focus.container",),
        _optional_container,
        "",
        "Blob container the costs timer writes each final UTC day's cost rows to, in FOCUS 1.2 columns (one CSV per "
        "day, after the bill check); empty: no export.",
        "empty or a blob container name (3-63 lowercase letters, digits and hyphens)",
    ),
    Setting(
        "FOCUS_EXPORT_BLOB_ENDPOINT",
        ("focus.blob_endpoint",),
        _optional_url,
        "",
        "Blob service endpoint the FOCUS export writes to with the managed identity in Azure; empty: the blob "
        "endpoint of COST_STATE_CONNECTION_STRING (Azurite locally).",
        "empty or https://<account>.blob.core.windows.net",
    ),
    Setting(
        "FOCUS_EXPORT_DAYS",
        ("focus.days",),
        _positive_int,
        "3",
        "Final UTC days the FOCUS export writes again on every costs run (a day restated since is rewritten).",
        "a whole number of days greater than 0",
    ),
    Setting(
        "FOCUS_BILLING_ACCOUNT_ID",
        ("focus.billing_account_id",),
        _optional_text,
        "",
        "BillingAccountId of the FOCUS rows (your EA enrollment or MCA billing profile, as Cost Management's own FOCUS "
        "export has it); empty: each model account's subscription.",
        "empty or a billing account id, e.g. /providers/Microsoft.Billing/billingAccounts/<id>",
    ),
    Setting(
        "ALERT_RULES_FILE",
        ("alerts.rules_file",),
        _app_path,
        "shared/alerts/alerts.sample.json",
        "Alert rules file (thresholds, budgets, spikes, unpriced, pipeline health); relative to the app root.",
        "the path of an alert rules JSON file",
    ),
    Setting(
        "REPORT_PERIODS",
        ("alerts.report_periods",),
        _report_periods,
        "weekly,monthly",
        "Chargeback reports the costs timer sends, once a period has ended, to the groups the rules file's reports "
        "section names: weekly (ISO weeks, Monday 00:00 UTC), monthly (calendar months, UTC), both, or none.",
        "weekly, monthly, weekly,monthly or none",
    ),
    Setting(
        "ALERT_STATE_TABLE",
        ("alerts.state_table_name",),
        _text,
        "AlertState",
        "Table holding alert state (same storage as the costs progress).",
        "a table name (letters and digits)",
    ),
    Setting(
        "ALERT_DELIVERY",
        ("alerts.delivery",),
        _delivery,
        "smtp",
        "How alert emails are sent: smtp (any relay) or acs (Azure Communication Services, managed identity).",
        "smtp or acs",
    ),
    # One default (the alert run's own class once said @example.com): @localhost, as in
    # local.settings.sample.json for the local stand-ins; in Azure infra sets the ACS MailFrom address.
    Setting(
        "ALERT_EMAIL_FROM",
        ("alerts.sender",),
        _email_address,
        "ai-gateway-alerts@localhost",
        "Sender address of alert emails; with acs a verified MailFrom address.",
        "an email address",
    ),
    Setting("ALERT_SMTP_HOST", ("alerts.smtp_host",), _text, "127.0.0.1", "SMTP relay host.", "a host name"),
    Setting("ALERT_SMTP_PORT", ("alerts.smtp_port",), _positive_int, "587", "SMTP relay port.", "a port number"),
    Setting(
        "ALERT_SMTP_USERNAME",
        ("alerts.smtp_username",),
        _optional_text,
        "",
        "SMTP AUTH user; empty: no AUTH.",
        "empty or a user name",
    ),
    Setting(
        "ALERT_SMTP_PASSWORD",
        ("alerts.smtp_password",),
        _optional_text,
        "",
        "SMTP AUTH password (a Key Vault reference in Azure).",
        "empty or the password",
        secret=True,
    ),
    Setting("ALERT_SMTP_STARTTLS", ("alerts.smtp_starttls",), _bool, "true", "STARTTLS before AUTH.", "true or false"),
    Setting(
        "ALERT_ACS_ENDPOINT",
        ("alerts.acs_endpoint",),
        _optional_text,
        "",
        "Azure Communication Services endpoint, required with ALERT_DELIVERY=acs.",
        "empty or https://<resource>.communication.azure.com",
    ),
    Setting(
        "ALERT_LEASE_SECONDS",
        ("alerts.lease_seconds",),
        _positive_int,
        "600",
        "A notification claimed but not sent within this is taken over by a later run.",
        "a whole number of seconds greater than 0",
    ),
    Setting(
        "ALERT_DASHBOARD_URL",
        ("alerts.dashboard_url",),
        _optional_url,
        "",
        "Link to the cost dashboard shown in alert emails.",
        "empty or an absolute http(s) URL, e.g. https://portal.azure.com/#...",
    ),
    Setting(
        "AZURE_CLIENT_ID",
        ("azure.client_id",),
        _optional_text,
        "",
        "Client id of a user-assigned managed identity; empty uses the system-assigned one.",
        "empty or a client id (GUID)",
    ),
    Setting(
        "AZURE_CA_BUNDLE",
        ("azure.ca_bundle",),
        _optional_app_path,
        "",
        "PEM file of extra CAs to trust for Azure Monitor calls; empty in Azure, the local stand-ins' CA locally.",
        "empty or the path of a PEM file",
    ),
)

# Settings the Functions host itself reads; listed in local.settings.sample.json and infra but
# not parsed by us.
HOST_SETTINGS: tuple[str, ...] = ("AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME")


@dataclass(frozen=True)
class Schedules:
    traffic: str  # NCRONTAB; the host reads the same settings through %TRAFFIC_SCHEDULE%
    costs: str


@dataclass(frozen=True)
class TrafficSettings:
    """Everything a traffic run needs (shared/traffic/run.py)."""

    gateway_url: str
    openai_api_version: str
    personas_file: Path
    seed: int | None  # None: a fresh seed per run (logged and uploaded, so a run can be replayed)
    requests_per_run: int
    concurrency: int
    time_budget_seconds: float  # the whole run, upload included; below the Functions timeout
    request_timeout_seconds: float
    max_retries: int
    failure_warn_ratio: float
    ingestion_endpoint: str
    ingestion_rule_id: str
    ingestion_stream: str
    # The app settings the personas name for their subscription keys, by name, as set (not
    # stripped, so the personas can tell "empty" from "not set"); a setting not set is absent.
    subscription_keys: Mapping[str, str] = field(repr=False)


@dataclass(frozen=True)
class CostSettings:
    """Everything a costs run needs (shared/costs/run.py)."""

    workspace_id: str
    query_endpoint: str
    ingestion_endpoint: str  # the DCR's logs ingestion endpoint (kind Direct: the DCR's own)
    ingestion_rule_id: str  # the DCR immutable id, dcr-...
    ingestion_stream: str
    metrics_schema: MetricsSchema
    metrics_resource_id: str | None  # App Insights resource id, for customMetrics in Azure
    window_minutes: int
    ingestion_delay_minutes: int
    recompute_windows: int
    price_table_path: Path
    deployment_map_path: Path | None
    model_accounts: tuple[ModelAccount, ...]  # whose deployments each run lists through ARM; () none
    resource_manager_endpoint: str
    state_connection_string: str | None = field(repr=False)  # may hold a storage key
    state_table_endpoint: str | None  # with the managed identity in Azure
    state_table_name: str
    upload_chunk_rows: int
    upload_attempts: int
    query_attempts: int
    retry_delay_seconds: float
    azure: AzureAccess


@dataclass(frozen=True)
class AlertSettings:
    """Everything an alert run needs (shared/alerts/run.py)."""

    rules_file: Path
    workspace_id: str
    query_endpoint: str
    window_minutes: int  # the cost summaries' window width (COST_WINDOW_MINUTES)
    state_connection_string: str | None = field(repr=False)  # the costs progress' storage
    state_table_endpoint: str | None
    state_table_name: str
    delivery: Delivery
    sender: str
    smtp_host: str
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    smtp_starttls: bool
    acs_endpoint: str | None  # required with delivery acs (checked in load_settings)
    lease_seconds: int  # a claimed notification not sent within this is taken over
    dashboard_url: str
    report_periods: tuple[str, ...]  # "weekly", "monthly": the chargeback reports sent (shared/reports/)
    azure: AzureAccess
    # The app settings the rules file's recipient groups name for their Teams / Slack / webhook URLs and
    # signing secrets, by name, as set (checked at start: https, set, a whsec_ secret); "" switches a channel off.
    channel_settings: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class MeterSettings:
    """Everything the bypass check needs (shared/meters/run.py): the accounts' own token metrics."""

    model_accounts: tuple[ModelAccount, ...]  # () : no check
    resource_manager_endpoint: str  # the metrics API is an ARM extension of each account
    window_minutes: int  # the cost windows the gateway side is summed in
    attempts: int  # per account metrics read, on 429 / 5xx / timeouts
    budget_seconds: float  # the whole check, waits included
    retry_delay_seconds: float  # pause after a failure without Retry-After
    # Each comparison, compared or pending, goes to MeterComparison_CL (its latest revision read back first).
    workspace_id: str
    query_endpoint: str
    ingestion_endpoint: str
    ingestion_rule_id: str
    ingestion_stream: str
    upload_attempts: int
    azure: AzureAccess


@dataclass(frozen=True)
class BillSettings:
    """Everything the bill check needs (shared/billing/run.py): Cost Management against the cost summaries."""

    model_accounts: tuple[ModelAccount, ...]  # () : no check
    resource_manager_endpoint: str  # Cost Management's Query API is an ARM extension of the scope
    scope: BillScope
    settle_hours: float
    days: int  # settled days read again each check
    interval_hours: float
    attempts: int  # per Cost Management query, on 429 / 5xx / timeouts
    budget_seconds: float  # the whole check, waits included
    retry_delay_seconds: float
    workspace_id: str  # our side: the summaries' latest complete revision
    query_endpoint: str
    ingestion_endpoint: str  # the comparisons go to BillReconciliation_CL through the same DCR
    ingestion_rule_id: str
    ingestion_stream: str
    upload_attempts: int
    # When Cost Management was last read: a row of its own in the costs progress table.
    state_connection_string: str | None = field(repr=False)
    state_table_endpoint: str | None
    state_table_name: str
    azure: AzureAccess


@dataclass(frozen=True)
class FocusSettings:
    """Everything the FOCUS export needs (shared/focus/export.py): the summaries' final days as FOCUS rows in Blob
    storage."""

    container: str  # "": no export
    blob_endpoint: str  # with the managed identity in Azure; "": the connection string's blob endpoint
    storage_connection_string: str | None = field(repr=False)  # Azurite locally (may hold a storage key)
    days: int  # final days written again each run
    billing_account_id: str | None  # None: each model account's subscription
    workspace_id: str
    query_endpoint: str
    # Where each deployment's model version and account come from: the costs run's own discovery and map.
    model_accounts: tuple[ModelAccount, ...]
    resource_manager_endpoint: str
    deployment_map_path: Path | None
    azure: AzureAccess


@dataclass(frozen=True)
class Settings:
    schedules: Schedules
    traffic: TrafficSettings
    costs: CostSettings
    alerts: AlertSettings
    meters: MeterSettings
    bill: BillSettings
    focus: FocusSettings
    azure: AzureAccess


SECTIONS: dict[str, type[Any]] = {
    "schedules": Schedules,
    "traffic": TrafficSettings,
    "costs": CostSettings,
    "alerts": AlertSettings,
    "meters": MeterSettings,
    "bill": BillSettings,
    "focus": FocusSettings,
    "azure": AzureAccess,
}
# Section fields no single setting fills: the persona keys (named by the persona file) and the
# Azure access the costs, meters and alert runs share.
COLLECTED: frozenset[str] = frozenset(
    {"traffic.subscription_keys", "costs.azure", "alerts.azure", "meters.azure", "bill.azure", "focus.azure"}
    | {"alerts.channel_settings"}  # the settings the rules file's channels name
)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse every setting; report all problems at once so one fix round is enough."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw is None or (raw.strip() == "" and setting.default is None):
            if setting.default is None:
                problems.append(f"app setting {setting.name} is missing; expected {setting.expected}")
                continue
            raw = setting.default
        raw = raw.strip()
        if _NOT_TEXT.search(raw):
            # Python decodes environment bytes that are not UTF-8 to lone surrogates (PEP 383), which no SDK, header or
            # email can encode later; a NUL cannot be in a real environment at all.
            shown = "" if setting.secret else f"={raw!r}"  # repr spells a surrogate as \udcxx
            problems.append(f"app setting {setting.name}{shown} is not UTF-8 text; expected {setting.expected}")
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as error:
            # A parser's Invalid says precisely what it wants; any other ValueError (int("ten"), a bad
            # URL) falls back to the setting's own expectation, which names its example.
            expected = error.expected if isinstance(error, Invalid) else setting.expected
            shown = f"<{len(raw)} characters, hidden>" if setting.secret else repr(raw)
            problems.append(f"app setting {setting.name}={shown} is invalid; expected {expected}")
    if not problems:
        problems.extend(_cross_setting_problems(values))
    channels: dict[str, str] = {}
    if "ALERT_RULES_FILE" in values:
        channels, channel_problems = _channel_settings(values["ALERT_RULES_FILE"], environ)
        problems.extend(channel_problems)
    if problems:
        raise ConfigError("\n".join(problems))
    return _sections(values, environ, channels)


def _cross_setting_problems(values: Mapping[str, Any]) -> list[str]:
    """Checks that span settings: here once, so no section re-checks them."""
    problems = []
    if not (values["COST_STATE_CONNECTION_STRING"] or values["COST_STATE_TABLE_ENDPOINT"]):
        # The costs progress and the alert state live in the same storage.
        problems.append(
            "app settings COST_STATE_CONNECTION_STRING and COST_STATE_TABLE_ENDPOINT are both empty; expected "
            "one of them (the table endpoint with the managed identity in Azure, a connection string locally)"
        )
    blob_reachable = values["FOCUS_EXPORT_BLOB_ENDPOINT"] or values["COST_STATE_CONNECTION_STRING"]
    if values["FOCUS_EXPORT_CONTAINER"] and not blob_reachable:
        problems.append(
            "app setting FOCUS_EXPORT_BLOB_ENDPOINT is empty with FOCUS_EXPORT_CONTAINER set; expected the blob "
            "endpoint (https://<account>.blob.core.windows.net) with the managed identity, or "
            "COST_STATE_CONNECTION_STRING locally"
        )
    if values["ALERT_DELIVERY"] == "acs" and not values["ALERT_ACS_ENDPOINT"]:
        problems.append("app setting ALERT_ACS_ENDPOINT is empty; expected the ACS endpoint with ALERT_DELIVERY=acs")
    return problems


def _sections(values: Mapping[str, Any], environ: Mapping[str, str], channels: Mapping[str, str]) -> Settings:
    by_section: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for setting in SETTINGS:
        for target in setting.feeds:
            section, _, name = target.partition(".")
            by_section[section][name] = values[setting.name]
    azure = AzureAccess(**by_section.pop("azure"))
    for name in ("costs", "alerts", "meters", "bill", "focus"):
        by_section[name]["azure"] = azure
    by_section["traffic"]["subscription_keys"] = _subscription_keys(values["TRAFFIC_PERSONAS_FILE"], environ)
    by_section["alerts"]["channel_settings"] = dict(channels)
    return Settings(
        schedules=Schedules(**by_section["schedules"]),
        traffic=TrafficSettings(**by_section["traffic"]),
        costs=CostSettings(**by_section["costs"]),
        alerts=AlertSettings(**by_section["alerts"]),
        meters=MeterSettings(**by_section["meters"]),
        bill=BillSettings(**by_section["bill"]),
        focus=FocusSettings(**by_section["focus"]),
        azure=azure,
    )


def _subscription_keys(personas_file: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The app settings the personas name for their keys (secrets: held, never shown)."""
    # The names are in the persona file, so the settings cannot be declared above. A setting that is
    # not set, or a file that cannot be read, is reported by the traffic run with the file and persona.
    from shared.traffic.personas import key_settings

    return {name: environ[name] for name in key_settings(personas_file) if name in environ}


_KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def webhook_url_problem(url: str) -> str | None:
    """Why a channel's webhook URL cannot be used, or None: https only (http to this machine's loopback, for the
    local webhook sink); no user:password part (it would travel in a header to whoever serves the URL)."""
    parsed = urlparse(url)
    if parsed.scheme == "https" and parsed.hostname:
        return "has credentials in it" if parsed.username or parsed.password else None
    if parsed.scheme == "http" and parsed.hostname in _LOOPBACK:
        return None
    return "is not an https URL (http is allowed only to 127.0.0.1 or localhost, the local webhook sink)"


def _channel_settings(rules_file: Path, environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The app settings the rules file's channels name (URLs and signing secrets, as set), and what is wrong with
    them: a setting not set, a URL that is not https, an unresolved Key Vault reference, a bad signing secret.
    An empty URL setting switches its channel off (the alert run says so). A rules file that cannot be read or is
    invalid collects nothing: the alert run reports it with file, line and field at its first read."""
    from shared.alerts.rules import load_rules
    from shared.channels.transports import secret_key
    from shared.errors import InputError

    try:
        rules = load_rules(rules_file)
    except (InputError, OSError):
        return {}, []
    declared = {setting.name for setting in SETTINGS}
    collected: dict[str, str] = {}
    problems: list[str] = []
    for targets in rules.channels.values():
        for target in targets:
            named = f"named by {target.where}"
            for name, what in ((target.url_setting, "url"), (target.secret_setting, "secret")):
                if name is None:
                    continue
                if name in declared:
                    problems.append(f"app setting {name} ({named}) is one of the app's own settings; name a setting "
                                    f"of its own for the {target.kind} {what}")  # fmt: skip
                    continue
                raw = environ.get(name)
                expected = (
                    f"the {target.kind} webhook URL (https), or empty to switch the channel off"
                    if what == "url"
                    else 'the webhook signing secret, "whsec_" followed by base64 (Standard Webhooks)'
                )
                if raw is None:
                    problems.append(f"app setting {name} ({named}) is missing; expected {expected}")
                    continue
                value = raw.strip()
                if value.startswith(_KEY_VAULT_REFERENCE):
                    problems.append(
                        f"app setting {name} ({named}) is a Key Vault reference the platform did not resolve (the "
                        "secret is missing, or the app's identity cannot read it); expected " + expected
                    )
                    continue
                collected[name] = value
            url = collected.get(target.url_setting, "")
            if url and (problem := webhook_url_problem(url)):
                problems.append(f"app setting {target.url_setting} ({named}) {problem}; expected the {target.kind} "
                                "webhook URL, https://...")  # fmt: skip
            if url and target.secret_setting and target.secret_setting in collected:
                try:
                    secret_key(collected[target.secret_setting])
                except ValueError as error:
                    problems.append(f"app setting {target.secret_setting}=<hidden> ({named}) is invalid; {error}")
    return collected, problems


def setting_names() -> list[str]:
    return [setting.name for setting in SETTINGS]


def section_fields() -> set[str]:
    """Every "section.field" of the sections (a test checks each is filled exactly once)."""
    return {f"{section}.{item.name}" for section, cls in SECTIONS.items() for item in fields(cls)}
