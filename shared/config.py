"""Every app setting the function app reads, in one place, parsed into a typed object.

Settings are environment variables (Functions app settings; `local.settings.json` "Values"
locally). Each is declared once in SETTINGS with its default and meaning; the README table,
local.settings.sample.json and infra list the same names, and a test keeps them in step.
A missing or bad value fails at start with the setting's name, the value and what is expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlparse

from shared.errors import ConfigError

_NCRONTAB_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")


def _schedule(value: str) -> str:
    # Azure Functions NCRONTAB: six fields, seconds first. Parsed fully by the host; we only
    # catch the common mistake of a five-field (Unix cron) expression early.
    parts = value.split()
    if len(parts) != 6 or not all(_NCRONTAB_FIELD.match(part) for part in parts):
        raise ValueError("an NCRONTAB expression with six fields, seconds first, e.g. '0 */5 * * * *'")
    return " ".join(parts)


def _url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("an absolute http(s) URL, e.g. https://my-apim.azure-api.net")
    return value.rstrip("/")


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("a whole number greater than 0")
    return number


def _non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("a whole number, 0 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("a number greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if not 0 <= number < float("inf"):
        raise ValueError("a number, 0 or more")
    return number


def _ratio(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError("a number from 0 to 1")
    return number


def _window_minutes(value: str) -> int:
    number = int(value)
    if number <= 0 or 1440 % number:
        raise ValueError("a whole number of minutes that divides a day (1440) evenly, e.g. 15, 30, 60, 1440")
    return number


def _metrics_schema(value: str) -> str:
    if value not in ("AppMetrics", "customMetrics"):
        raise ValueError("AppMetrics (workspace schema) or customMetrics (classic Application Insights schema)")
    return value


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("true or false")
    return lowered == "true"


def _delivery(value: str) -> str:
    if value not in ("smtp", "acs"):
        raise ValueError("smtp (any SMTP relay) or acs (Azure Communication Services Email)")
    return value


def _email_address(value: str) -> str:
    local, _, domain = value.rpartition("@")
    if not local or not domain or " " in value:
        raise ValueError("an email address, e.g. ai-gateway-alerts@contoso.com")
    return value


def _optional_int(value: str) -> int | None:
    return int(value) if value else None


def _text(value: str) -> str:
    return value


def _optional_text(value: str) -> str | None:
    return value or None


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], Any]
    default: str | None  # None: required
    meaning: str
    expected: str
    secret: bool = False  # never echo the value in an error message


_SCHEDULE = "an NCRONTAB expression with six fields, seconds first, e.g. '0 */5 * * * *'"

SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TRAFFIC_SCHEDULE",
        _schedule,
        "0 */5 * * * *",
        "When the traffic timer runs (NCRONTAB, six fields, seconds first).",
        _SCHEDULE,
    ),
    Setting(
        "COST_SCHEDULE",
        _schedule,
        "0 */15 * * * *",
        "When the costs timer runs (NCRONTAB, six fields, seconds first).",
        _SCHEDULE,
    ),
    Setting(
        "GATEWAY_URL",
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
        _text,
        "2025-04-01-preview",
        "Azure OpenAI data-plane api-version the synthetic clients send.",
        "an api-version string such as 2025-04-01-preview",
    ),
    Setting(
        "TRAFFIC_PERSONAS_FILE",
        _text,
        "shared/traffic/personas.sample.json",
        "Persona file of the synthetic traffic; relative paths start at the app root.",
        "the path of a persona JSON file",
    ),
    Setting(
        "TRAFFIC_SEED",
        _optional_int,
        "",
        "Seed of the synthetic traffic; empty: a fresh seed each run (logged, so a run can be replayed).",
        "empty or a whole number",
    ),
    Setting(
        "TRAFFIC_REQUESTS_PER_RUN",
        _positive_int,
        "20",
        "Chat completions planned per traffic run.",
        "a whole number greater than 0",
    ),
    Setting(
        "TRAFFIC_CONCURRENCY",
        _positive_int,
        "16",
        "Most synthetic calls in flight at once.",
        "a whole number greater than 0",
    ),
    Setting(
        "TRAFFIC_TIME_BUDGET_SECONDS",
        _positive_float,
        "240",
        "A traffic run, upload included, ends within this; keep it below functionTimeout and the schedule period.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "TRAFFIC_REQUEST_TIMEOUT_SECONDS",
        _positive_float,
        "30",
        "Timeout of one synthetic call attempt.",
        "a number of seconds greater than 0",
    ),
    Setting(
        "TRAFFIC_MAX_RETRIES",
        _non_negative_int,
        "2",
        "Retries of a synthetic call on 408/409/429/5xx, timeouts and connection errors (Retry-After honoured).",
        "a whole number, 0 or more",
    ),
    Setting(
        "TRAFFIC_FAILURE_WARN_RATIO",
        _ratio,
        "0.05",
        "A traffic run logs a warning when more than this share of its sent calls failed.",
        "a number from 0 to 1",
    ),
    Setting(
        "TRAFFIC_INGESTION_STREAM",
        _text,
        "Custom-SyntheticTraffic_CL",
        "Data collection rule stream of the synthetic-traffic ground truth.",
        "a DCR stream name",
    ),
    Setting(
        "LOGS_INGESTION_ENDPOINT",
        _url,
        None,
        "Logs ingestion endpoint of the data collection rule the app uploads to.",
        "an absolute https URL, e.g. https://my-dcr-abcd.westeurope-1.ingest.monitor.azure.com",
    ),
    Setting(
        "LOGS_INGESTION_RULE_ID",
        _text,
        None,
        "Immutable id of that data collection rule.",
        "the DCR immutable id, dcr-<32 hex digits>",
    ),
    Setting(
        "LOG_ANALYTICS_WORKSPACE_ID",
        _text,
        None,
        "Workspace (customer) id of the Log Analytics workspace holding the token metrics.",
        "the workspace id (a GUID in Azure)",
    ),
    Setting(
        "LOG_ANALYTICS_ENDPOINT",
        _url,
        "https://api.loganalytics.io",
        "Log Analytics query API endpoint (sovereign clouds and the local stand-in differ).",
        "an absolute https URL such as https://api.loganalytics.io",
    ),
    Setting(
        "COST_WINDOW_MINUTES",
        _window_minutes,
        "60",
        "Width of a cost summary window in minutes.",
        "a whole number of minutes that divides 1440",
    ),
    Setting(
        "COST_METRICS_SCHEMA",
        _metrics_schema,
        "AppMetrics",
        "Which table holds the token metrics: AppMetrics (workspace) or customMetrics (Application Insights).",
        "AppMetrics or customMetrics",
    ),
    Setting(
        "COST_METRICS_RESOURCE_ID",
        _optional_text,
        "",
        "Application Insights resource id; when set, customMetrics is queried on that resource.",
        "empty or an Azure resource id",
    ),
    Setting(
        "COST_INGESTION_DELAY_MINUTES",
        _non_negative_int,
        "15",
        "A window becomes final this long after its end (Azure Monitor ingestion delay allowance).",
        "a whole number of minutes, 0 or more",
    ),
    Setting(
        "COST_RECOMPUTE_WINDOWS",
        _non_negative_int,
        "3",
        "Final windows recomputed by every run so late metrics land in their window; also the first run's lookback.",
        "a whole number, 0 or more",
    ),
    Setting(
        "COST_PRICE_TABLE",
        _text,
        "shared/costs/prices/price-table.json",
        "Versioned price table (native or LiteLLM format); relative paths start at the app root.",
        "the path of a price table JSON file",
    ),
    Setting(
        "COST_DEPLOYMENT_MAP",
        _optional_text,
        "shared/costs/prices/deployments.json",
        "Deployment → model map; empty: deployment names are model names.",
        "empty or the path of a deployment map JSON file",
    ),
    Setting(
        "COST_DCR_STREAM",
        _text,
        "Custom-TokenCostSummary_CL",
        "Data collection rule stream of the cost summaries.",
        "a DCR stream name",
    ),
    Setting(
        "COST_STATE_CONNECTION_STRING",
        _optional_text,
        "",
        "Table storage connection string for the costs progress (Azurite locally); empty in Azure.",
        "empty or a storage connection string",
    ),
    Setting(
        "COST_STATE_TABLE_ENDPOINT",
        _optional_text,
        "",
        "Table service endpoint used with the managed identity in Azure.",
        "empty or https://<account>.table.core.windows.net",
    ),
    Setting(
        "COST_STATE_TABLE",
        _text,
        "CostProgress",
        "Table holding which cost windows are final.",
        "a table name (letters and digits)",
    ),
    Setting(
        "COST_UPLOAD_CHUNK_ROWS",
        _positive_int,
        "5000",
        "Summary rows per upload chunk.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_UPLOAD_ATTEMPTS",
        _positive_int,
        "3",
        "Attempts per failed upload chunk before the window is left for the next run.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_QUERY_ATTEMPTS",
        _positive_int,
        "3",
        "Attempts per usage query on partial or failed results.",
        "a whole number greater than 0",
    ),
    Setting(
        "COST_RETRY_DELAY_SECONDS",
        _non_negative_float,
        "5",
        "Pause between query or upload attempts.",
        "a number of seconds, 0 or more",
    ),
    Setting(
        "ALERT_RULES_FILE",
        _text,
        "shared/alerts/alerts.sample.json",
        "Alert rules file (thresholds, budgets, spikes, unpriced, pipeline health); relative to the app root.",
        "the path of an alert rules JSON file",
    ),
    Setting(
        "ALERT_STATE_TABLE",
        _text,
        "AlertState",
        "Table holding alert state (same storage as the costs progress).",
        "a table name (letters and digits)",
    ),
    Setting(
        "ALERT_DELIVERY",
        _delivery,
        "smtp",
        "How alert emails are sent: smtp (any relay) or acs (Azure Communication Services, managed identity).",
        "smtp or acs",
    ),
    Setting(
        "ALERT_EMAIL_FROM",
        _email_address,
        "ai-gateway-alerts@localhost",
        "Sender address of alert emails; with acs a verified MailFrom address.",
        "an email address",
    ),
    Setting("ALERT_SMTP_HOST", _text, "127.0.0.1", "SMTP relay host.", "a host name"),
    Setting("ALERT_SMTP_PORT", _positive_int, "587", "SMTP relay port.", "a port number"),
    Setting("ALERT_SMTP_USERNAME", _optional_text, "", "SMTP AUTH user; empty: no AUTH.", "empty or a user name"),
    Setting(
        "ALERT_SMTP_PASSWORD",
        _optional_text,
        "",
        "SMTP AUTH password (a Key Vault reference in Azure).",
        "empty or the password",
        secret=True,
    ),
    Setting("ALERT_SMTP_STARTTLS", _bool, "true", "STARTTLS before AUTH.", "true or false"),
    Setting(
        "ALERT_ACS_ENDPOINT",
        _optional_text,
        "",
        "Azure Communication Services endpoint, required with ALERT_DELIVERY=acs.",
        "empty or https://<resource>.communication.azure.com",
    ),
    Setting(
        "ALERT_LEASE_SECONDS",
        _positive_int,
        "600",
        "A notification claimed but not sent within this is taken over by a later run.",
        "a whole number of seconds greater than 0",
    ),
    Setting("ALERT_DASHBOARD_URL", _text, "", "Link to the cost dashboard shown in alert emails.", "empty or a URL"),
    Setting(
        "AZURE_CLIENT_ID",
        _optional_text,
        "",
        "Client id of a user-assigned managed identity; empty uses the system-assigned one.",
        "empty or a client id (GUID)",
    ),
    Setting(
        "AZURE_CA_BUNDLE",
        _optional_text,
        "",
        "PEM file of extra CAs to trust for Azure Monitor calls; empty in Azure, the local stand-ins' CA locally.",
        "empty or the path of a PEM file",
    ),
)

# Settings the Functions host itself reads; listed in local.settings.sample.json and infra but
# not parsed by us.
HOST_SETTINGS: tuple[str, ...] = ("AzureWebJobsStorage", "FUNCTIONS_WORKER_RUNTIME")


@dataclass(frozen=True)
class Settings:
    traffic_schedule: str
    cost_schedule: str
    gateway_url: str
    openai_api_version: str
    traffic_personas_file: str
    traffic_seed: int | None
    traffic_requests_per_run: int
    traffic_concurrency: int
    traffic_time_budget_seconds: float
    traffic_request_timeout_seconds: float
    traffic_max_retries: int
    traffic_failure_warn_ratio: float
    traffic_ingestion_stream: str
    logs_ingestion_endpoint: str
    logs_ingestion_rule_id: str
    log_analytics_workspace_id: str
    log_analytics_endpoint: str
    cost_window_minutes: int
    cost_metrics_schema: str
    cost_metrics_resource_id: str | None
    cost_ingestion_delay_minutes: int
    cost_recompute_windows: int
    cost_price_table: str
    cost_deployment_map: str | None
    cost_dcr_stream: str
    cost_state_connection_string: str | None
    cost_state_table_endpoint: str | None
    cost_state_table: str
    cost_upload_chunk_rows: int
    cost_upload_attempts: int
    cost_query_attempts: int
    cost_retry_delay_seconds: float
    alert_rules_file: str
    alert_state_table: str
    alert_delivery: str
    alert_email_from: str
    alert_smtp_host: str
    alert_smtp_port: int
    alert_smtp_username: str | None
    alert_smtp_password: str | None
    alert_smtp_starttls: bool
    alert_acs_endpoint: str | None
    alert_lease_seconds: int
    alert_dashboard_url: str
    azure_client_id: str | None
    azure_ca_bundle: str | None


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
        try:
            values[setting.name.lower()] = setting.parse(raw)
        except ValueError as error:
            expected = str(error) if str(error) and not str(error).startswith("invalid literal") else setting.expected
            shown = f"<{len(raw)} characters, hidden>" if setting.secret else repr(raw)
            problems.append(f"app setting {setting.name}={shown} is invalid; expected {expected}")
    if not problems and not (values["cost_state_connection_string"] or values["cost_state_table_endpoint"]):
        problems.append(
            "app settings COST_STATE_CONNECTION_STRING and COST_STATE_TABLE_ENDPOINT are both empty; expected "
            "one of them (the table endpoint with the managed identity in Azure, a connection string locally)"
        )
    if not problems and values["alert_delivery"] == "acs" and not values["alert_acs_endpoint"]:
        problems.append("app setting ALERT_ACS_ENDPOINT is empty; expected the ACS endpoint with ALERT_DELIVERY=acs")
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(**{field.name: values[field.name] for field in fields(Settings)})


def setting_names() -> list[str]:
    return [setting.name for setting in SETTINGS]
