"""Config sections with test values: the declared defaults (shared/config.py) plus what a test sets.

Built through load_settings, so a test gets the same defaults the app does; `dataclasses.replace`
then sets the test's own values (local endpoints, temporary files, a fresh table per test).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.alerts.rules import load_rules
from shared.azure_clients import AzureAccess
from shared.config import APP_ROOT, AlertSettings, CostSettings, Settings, load_settings

# The settings without a default, with placeholder values a test overrides where it matters.
REQUIRED = {
    "GATEWAY_URL": "https://apim.example.net",
    "LOGS_INGESTION_ENDPOINT": "https://dcr.example.net",
    "LOGS_INGESTION_RULE_ID": "dcr-0123",
    "LOG_ANALYTICS_WORKSPACE_ID": "ws",
    "COST_STATE_TABLE_ENDPOINT": "https://st.table.core.windows.net",
    # The sample rules' finops group names these for its Teams and Slack channels (empty: switched off).
    "ALERT_TEAMS_FINOPS_URL": "",
    "ALERT_SLACK_FINOPS_URL": "",
}




def channel_settings(rules_file: Path = APP_ROOT / "shared" / "alerts" / "alerts.sample.json") -> set[str]:
    """The app settings a rules file's channels name (the sample's: its finops group's Teams and Slack URLs)."""
    return set(load_rules(rules_file).channel_settings())


def settings_with(**environ: str) -> Settings:
    return load_settings({**REQUIRED, **environ})


def local_azure(ca_bundle: str | Path | None) -> AzureAccess:
    """The local stand-ins' access: the system-assigned identity (the stand-in) and their CA."""
    return AzureAccess(client_id=None, ca_bundle=Path(ca_bundle) if ca_bundle else None)


def cost_section(*, ca_bundle: str | Path | None = None, **values: Any) -> CostSettings:
    return replace(settings_with().costs, azure=local_azure(ca_bundle), **values)


def alert_section(*, ca_bundle: str | Path | None = None, **values: Any) -> AlertSettings:
    return replace(settings_with().alerts, azure=local_azure(ca_bundle), **values)
