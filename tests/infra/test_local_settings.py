"""tools/write_local_settings.py: local.settings.json for `func start` against the azd resources."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from shared.config import load_settings
from tests import ROOT
from tests.support.bicep import parse
from tools import write_local_settings as tool

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
AZD_ENV = """AZURE_FUNCTION_APP_NAME="func-abc"
AZURE_CLIENT_ID="11111111-2222-3333-4444-555555555555"
GATEWAY_URL="https://apim-abc.azure-api.net"
LOGS_INGESTION_ENDPOINT="https://dcr-abc.westeurope-1.ingest.monitor.azure.com"
LOGS_INGESTION_RULE_ID="dcr-0123456789abcdef0123456789abcdef"
LOG_ANALYTICS_WORKSPACE_ID="00000000-0000-4000-8000-000000000009"
COST_STATE_TABLE_ENDPOINT="https://stabc.table.core.windows.net/"
COST_STATE_TABLE="CostProgress"
KEY_VAULT_URI="https://kv-abc.vault.azure.net/"
"""


def test_settings_come_from_the_azd_outputs_and_the_key_vault() -> None:
    asked: list[tuple[str, str]] = []

    def read_secret(vault: str, name: str) -> str:
        asked.append((vault, name))
        return f"key-of-{name}"

    written = tool.build_settings(tool.parse_env(AZD_ENV), read_secret=read_secret)["Values"]
    assert set(written) == set(SAMPLE)
    assert written["GATEWAY_URL"] == "https://apim-abc.azure-api.net"
    assert written["AZURE_CLIENT_ID"] == "", "locally the app signs in as the developer"
    assert written["AZURE_CA_BUNDLE"] == ""
    assert written["TRAFFIC_KEY_TEAM_SUPPORT"] == "key-of-traffic-key-team-support"
    assert {vault for vault, _ in asked} == {"https://kv-abc.vault.azure.net/"}
    settings = load_settings(written)
    assert settings.costs.state_table_endpoint == "https://stabc.table.core.windows.net/"
    assert settings.schedules.traffic == "0 */5 * * * *"
    assert settings.traffic.subscription_keys["TRAFFIC_KEY_TEAM_SUPPORT"] == "key-of-traffic-key-team-support"


def test_every_azd_output_the_tool_reads_is_a_main_bicep_output() -> None:
    outputs = set(parse(ROOT / "infra" / "main.bicep")["outputs"])
    assert set(tool.parse_env(AZD_ENV)) <= outputs


def test_the_metrics_schema_chosen_at_provision_time_reaches_local_settings() -> None:
    component = "/subscriptions/s/resourceGroups/rg-x/providers/Microsoft.Insights/components/appi-abc"
    env = AZD_ENV + f'COST_METRICS_SCHEMA="customMetrics"\nCOST_METRICS_RESOURCE_ID="{component}"\n'
    assert set(tool.parse_env(env)) <= set(parse(ROOT / "infra" / "main.bicep")["outputs"])
    written = tool.build_settings(tool.parse_env(env), read_secret=lambda vault, name: "k")["Values"]
    settings = load_settings(written)
    assert (settings.costs.metrics_schema, settings.costs.metrics_resource_id) == ("customMetrics", component)


def test_secret_names_follow_the_bicep_rule() -> None:
    assert tool.secret_name("TRAFFIC_KEY_TEAM_BATCH") == "traffic-key-team-batch"


def test_cli_writes_a_private_file_without_secrets(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(AZD_ENV)
    output = tmp_path / "local.settings.json"
    assert tool.main(["--env-file", str(env_file), "--output", str(output), "--no-secrets"]) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    values = json.loads(output.read_text())["Values"]
    assert values["TRAFFIC_KEY_TEAM_RESEARCH"] == ""
    assert values["LOGS_INGESTION_RULE_ID"] == "dcr-0123456789abcdef0123456789abcdef"
