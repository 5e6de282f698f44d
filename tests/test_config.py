"""The config module: every setting parsed, bad or missing ones named with value and expectation."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from shared.config import HOST_SETTINGS, SETTINGS, ConfigError, Settings, load_settings, setting_names
from tests import ROOT

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
REQUIRED = {
    "GATEWAY_URL": "https://apim.example.net",
    "LOGS_INGESTION_ENDPOINT": "https://dcr.example.net",
    "LOGS_INGESTION_RULE_ID": "dcr-0123",
    "LOG_ANALYTICS_WORKSPACE_ID": "ws",
    "COST_STATE_TABLE_ENDPOINT": "https://st.table.core.windows.net",
}
SAMPLE_PERSONAS = json.loads((ROOT / "shared/traffic/personas.sample.json").read_text(encoding="utf-8"))["personas"]
PERSONA_KEY_SETTINGS = {persona["subscription_key_setting"] for persona in SAMPLE_PERSONAS}


def test_defaults_fill_everything_optional() -> None:
    settings = load_settings(REQUIRED)
    assert settings.traffic_schedule == "0 */5 * * * *"
    assert settings.cost_window_minutes == 60
    assert settings.log_analytics_endpoint == "https://api.loganalytics.io"
    assert settings.azure_ca_bundle is None
    assert settings.gateway_url == "https://apim.example.net"


def test_every_declared_setting_is_a_field() -> None:
    assert [setting.name.lower() for setting in SETTINGS] == [field.name for field in fields(Settings)]


def test_sample_settings_parse() -> None:
    settings = load_settings(SAMPLE)
    assert settings.traffic_schedule == "*/20 * * * * *"
    assert settings.traffic_seed is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TRAFFIC_SCHEDULE", "*/5 * * * *", "six fields, seconds first"),
        ("COST_SCHEDULE", "every hour", "six fields"),
        ("GATEWAY_URL", "apim.example.net", "absolute http(s) URL"),
        ("TRAFFIC_REQUESTS_PER_RUN", "0", "greater than 0"),
        ("TRAFFIC_REQUESTS_PER_RUN", "ten", "greater than 0"),
        ("COST_WINDOW_MINUTES", "-5", "divides a day"),
        ("COST_WINDOW_MINUTES", "7", "divides a day"),
        ("COST_METRICS_SCHEMA", "AppMetric", "AppMetrics (workspace schema) or customMetrics"),
        ("COST_RETRY_DELAY_SECONDS", "-1", "0 or more"),
        ("TRAFFIC_SEED", "abc", "empty or a whole number"),
        ("TRAFFIC_FAILURE_WARN_RATIO", "1.5", "from 0 to 1"),
        ("TRAFFIC_TIME_BUDGET_SECONDS", "0", "greater than 0"),
        ("TRAFFIC_MAX_RETRIES", "-1", "0 or more"),
        ("LOG_ANALYTICS_ENDPOINT", "ftp://x", "http(s) URL"),
    ],
)
def test_bad_value_names_setting_value_and_expectation(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({**REQUIRED, name: value})
    message = str(error.value)
    assert f"app setting {name}={value!r} is invalid" in message
    assert expected in message


def test_missing_required_settings_all_reported_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({})
    message = str(error.value)
    required = [setting.name for setting in SETTINGS if setting.default is None]
    assert required == [
        "GATEWAY_URL",
        "LOGS_INGESTION_ENDPOINT",
        "LOGS_INGESTION_RULE_ID",
        "LOG_ANALYTICS_WORKSPACE_ID",
    ]
    for name in required:
        assert f"app setting {name} is missing" in message


def test_sample_lists_exactly_the_settings() -> None:
    assert set(SAMPLE) == set(setting_names()) | set(HOST_SETTINGS) | PERSONA_KEY_SETTINGS


def test_readme_table_lists_exactly_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert documented == set(setting_names()) | set(HOST_SETTINGS) | PERSONA_KEY_SETTINGS


def test_sample_commits_no_secret() -> None:
    assert all(SAMPLE[name] == "" for name in PERSONA_KEY_SETTINGS)


def test_cost_state_needs_a_connection_string_or_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="COST_STATE_CONNECTION_STRING and COST_STATE_TABLE_ENDPOINT are both empty"):
        load_settings({**REQUIRED, "COST_STATE_TABLE_ENDPOINT": ""})
