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


class ConfigError(ValueError):
    """An app setting is missing or has a value we cannot use."""


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
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "TRAFFIC_SCHEDULE",
        _schedule,
        "0 */5 * * * *",
        "When the traffic timer runs (NCRONTAB, six fields, seconds first).",
        "an NCRONTAB expression with six fields, seconds first, e.g. '0 */5 * * * *'",
    ),
    Setting(
        "COST_SCHEDULE",
        _schedule,
        "0 */15 * * * *",
        "When the costs timer runs (NCRONTAB, six fields, seconds first).",
        "an NCRONTAB expression with six fields, seconds first, e.g. '0 */15 * * * *'",
    ),
    Setting(
        "GATEWAY_URL",
        _url,
        None,
        "Base URL of the API Management gateway (the traffic goes to <GATEWAY_URL>/inference).",
        "an absolute http(s) URL, e.g. https://my-apim.azure-api.net",
    ),
    Setting(
        "OPENAI_API_VERSION",
        _text,
        "2024-10-21",
        "Azure OpenAI data-plane api-version the synthetic clients send.",
        "an api-version string such as 2024-10-21",
    ),
    Setting(
        "TRAFFIC_SUBSCRIPTION_KEY",
        _text,
        None,
        "APIM subscription key the synthetic traffic uses (a Key Vault reference in Azure).",
        "a non-empty APIM subscription key",
        secret=True,
    ),
    Setting(
        "TRAFFIC_DEPLOYMENT",
        _text,
        "gpt-4o-mini",
        "Model deployment the synthetic traffic calls.",
        "a deployment name",
    ),
    Setting(
        "TRAFFIC_USER_ID",
        _text,
        "synthetic-user",
        "End-user id the synthetic traffic sends in the x-user-id header.",
        "a user id",
    ),
    Setting(
        "TRAFFIC_REQUESTS_PER_RUN",
        _positive_int,
        "4",
        "Chat completions sent per traffic run.",
        "a whole number greater than 0",
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
        _positive_int,
        "60",
        "Width of a cost summary window in minutes.",
        "a whole number of minutes greater than 0",
    ),
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
        "PEM file of extra CAs to trust for Azure Monitor calls; empty in Azure, the local "
        "stand-ins' CA locally.",
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
    traffic_subscription_key: str
    traffic_deployment: str
    traffic_user_id: str
    traffic_requests_per_run: int
    log_analytics_workspace_id: str
    log_analytics_endpoint: str
    cost_window_minutes: int
    azure_client_id: str | None
    azure_ca_bundle: str | None


def _shown(setting: Setting, raw: str) -> str:
    if setting.secret:
        return f"<{len(raw)} characters, hidden>"
    return repr(raw)


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
            expected = (
                str(error)
                if str(error) and not str(error).startswith("invalid literal")
                else setting.expected
            )
            problems.append(
                f"app setting {setting.name}={_shown(setting, raw)} is invalid; expected {expected}"
            )
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(**{field.name: values[field.name] for field in fields(Settings)})


def setting_names() -> list[str]:
    return [setting.name for setting in SETTINGS]
