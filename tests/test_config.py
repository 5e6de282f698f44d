"""The config module: every setting parsed, bad or missing ones named with value and expectation."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shared.config import (
    APP_ROOT,
    COLLECTED,
    HOST_SETTINGS,
    SETTINGS,
    ConfigError,
    app_relative,
    load_settings,
    section_fields,
    setting_names,
)
from shared.json_input import number, share, whole
from tests import ROOT
from tests.support.sections import REQUIRED, channel_settings

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
SAMPLE_PERSONAS = json.loads((ROOT / "shared/traffic/personas.sample.json").read_text(encoding="utf-8"))["personas"]
PERSONA_KEY_SETTINGS = {persona["subscription_key_setting"] for persona in SAMPLE_PERSONAS}
CHANNEL_SETTINGS = channel_settings()  # named by the sample rules file's recipient groups


def test_defaults_fill_everything_optional() -> None:
    settings = load_settings(REQUIRED)
    assert settings.schedules.traffic == "0 */5 * * * *"
    assert settings.costs.window_minutes == 60
    assert settings.costs.query_endpoint == "https://api.loganalytics.io"
    assert settings.azure.ca_bundle is None
    assert settings.traffic.gateway_url == "https://apim.example.net"


def test_every_section_field_is_filled_by_exactly_one_declared_setting() -> None:
    filled = Counter(target for setting in SETTINGS for target in setting.feeds)
    assert [target for target, count in filled.items() if count > 1] == []
    assert set(filled) | COLLECTED == section_fields()
    assert not set(filled) & COLLECTED


def test_shared_settings_fill_every_section_that_uses_them() -> None:
    settings = load_settings({**REQUIRED, "COST_WINDOW_MINUTES": "30", "COST_STATE_CONNECTION_STRING": "UseDev"})
    assert settings.costs.window_minutes == settings.alerts.window_minutes == 30
    assert settings.costs.workspace_id == settings.alerts.workspace_id == "ws"
    assert settings.costs.state_connection_string == settings.alerts.state_connection_string == "UseDev"
    assert settings.traffic.ingestion_endpoint == settings.costs.ingestion_endpoint == "https://dcr.example.net"
    assert settings.costs.azure is settings.alerts.azure is settings.azure


def test_defaults_agree_with_what_the_sections_document() -> None:
    # One default each; these were declared twice before and disagreed.
    settings = load_settings(REQUIRED)
    assert settings.alerts.sender == "ai-gateway-alerts@localhost"
    assert settings.alerts.state_table_name == "AlertState"
    assert settings.costs.state_table_name == "CostProgress"


def test_relative_paths_start_at_the_app_root_and_absolute_ones_stay(tmp_path: Path) -> None:
    settings = load_settings(REQUIRED)
    assert APP_ROOT == ROOT
    assert settings.traffic.personas_file == ROOT / "shared" / "traffic" / "personas.sample.json"
    assert settings.costs.price_table_path == ROOT / "shared" / "costs" / "prices" / "catalog.json"
    assert settings.costs.deployment_map_path == ROOT / "shared" / "costs" / "prices" / "deployments.json"
    assert settings.alerts.rules_file == ROOT / "shared" / "alerts" / "alerts.sample.json"
    assert app_relative(settings.alerts.rules_file) == "shared/alerts/alerts.sample.json"
    absolute = load_settings({**REQUIRED, "ALERT_RULES_FILE": str(tmp_path / "rules.json"), "COST_DEPLOYMENT_MAP": ""})
    assert absolute.alerts.rules_file == tmp_path / "rules.json"
    assert app_relative(absolute.alerts.rules_file) == str(tmp_path / "rules.json")
    assert absolute.costs.deployment_map_path is None


def test_an_empty_file_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="app setting TRAFFIC_PERSONAS_FILE='' is invalid; expected the path of a"):
        load_settings({**REQUIRED, "TRAFFIC_PERSONAS_FILE": ""})


def test_persona_keys_are_collected_from_the_settings_the_personas_name(tmp_path: Path) -> None:
    personas = tmp_path / "personas.json"
    personas.write_text(
        json.dumps({"personas": [{"subscription_key_setting": "KEY_A"}, {"subscription_key_setting": " KEY_B "}]})
    )
    settings = load_settings(
        {**REQUIRED, "TRAFFIC_PERSONAS_FILE": str(personas), "KEY_A": "secret-a", "KEY_B": "", "OTHER": "x"}
    )
    assert dict(settings.traffic.subscription_keys) == {"KEY_A": "secret-a", "KEY_B": ""}  # KEY_B: empty, not absent
    assert "secret-a" not in repr(settings)


def test_an_unreadable_persona_file_collects_no_keys_and_is_left_to_the_traffic_run(tmp_path: Path) -> None:
    settings = load_settings({**REQUIRED, "TRAFFIC_PERSONAS_FILE": str(tmp_path / "missing.json")})
    assert dict(settings.traffic.subscription_keys) == {}


def test_sample_persona_keys_are_collected() -> None:
    keys = {name: f"key-{name}" for name in PERSONA_KEY_SETTINGS}
    settings = load_settings({**REQUIRED, **keys})
    assert dict(settings.traffic.subscription_keys) == keys


def test_section_checks_live_in_config_and_are_reported_together() -> None:
    # Moved from the traffic run's own settings class (now gone): bad values named together.
    with pytest.raises(ConfigError) as error:
        load_settings({**REQUIRED, "TRAFFIC_CONCURRENCY": "0", "TRAFFIC_FAILURE_WARN_RATIO": "2"})
    message = str(error.value)
    assert "app setting TRAFFIC_CONCURRENCY='0' is invalid; expected a whole number greater than 0" in message
    assert "app setting TRAFFIC_FAILURE_WARN_RATIO='2' is invalid; expected a number from 0 to 1" in message


def test_sample_settings_parse() -> None:
    settings = load_settings(SAMPLE)
    assert settings.schedules.traffic == "*/20 * * * * *"
    assert settings.traffic.seed is None


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
    assert {"ALERT_TEAMS_FINOPS_URL", "ALERT_SLACK_FINOPS_URL"} == CHANNEL_SETTINGS
    assert set(SAMPLE) == set(setting_names()) | set(HOST_SETTINGS) | PERSONA_KEY_SETTINGS | CHANNEL_SETTINGS


def test_readme_table_lists_exactly_the_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert documented == set(setting_names()) | set(HOST_SETTINGS) | PERSONA_KEY_SETTINGS | CHANNEL_SETTINGS


def test_sample_commits_no_secret() -> None:
    assert all(SAMPLE[name] == "" for name in PERSONA_KEY_SETTINGS)
    # The channel URLs are the local webhook sink's (standins/webhook_sink.py), never a real receiver's.
    assert all(SAMPLE[name].startswith("https://127.0.0.1:7806/") for name in CHANNEL_SETTINGS)


def test_cost_state_needs_a_connection_string_or_an_endpoint() -> None:
    with pytest.raises(ConfigError, match="COST_STATE_CONNECTION_STRING and COST_STATE_TABLE_ENDPOINT are both empty"):
        load_settings({**REQUIRED, "COST_STATE_TABLE_ENDPOINT": ""})


def test_acs_delivery_needs_its_endpoint() -> None:
    with pytest.raises(ConfigError, match="app setting ALERT_ACS_ENDPOINT is empty; expected the ACS endpoint"):
        load_settings({**REQUIRED, "ALERT_DELIVERY": "acs"})
    settings = load_settings({**REQUIRED, "ALERT_DELIVERY": "acs", "ALERT_ACS_ENDPOINT": "https://x.communication.azure.com"})
    assert settings.alerts.delivery == "acs"


def test_secret_values_are_never_echoed() -> None:
    secret = {setting.name for setting in SETTINGS if setting.secret}
    assert secret == {"ALERT_SMTP_PASSWORD", "COST_STATE_CONNECTION_STRING"}
    settings = load_settings({**REQUIRED, "ALERT_SMTP_PASSWORD": "hunter2", "COST_STATE_CONNECTION_STRING": "Key=k"})
    assert "hunter2" not in repr(settings) and "Key=k" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value", "check"),
    [
        ("TRAFFIC_CONCURRENCY", "0", whole(above=0)),
        ("TRAFFIC_MAX_RETRIES", "-1", whole(minimum=0)),
        ("TRAFFIC_TIME_BUDGET_SECONDS", "inf", number(above=0)),
        ("TRAFFIC_TIME_BUDGET_SECONDS", "1e400", number(above=0)),  # finite as a Decimal, inf as a float
        ("COST_RETRY_DELAY_SECONDS", "1e999", number(minimum=0)),
        ("TRAFFIC_REQUEST_TIMEOUT_SECONDS", "nan", number(above=0)),
        ("COST_RETRY_DELAY_SECONDS", "-0.5", number(minimum=0)),
        ("TRAFFIC_FAILURE_WARN_RATIO", "1.01", share),
    ],
)
def test_a_setting_bound_is_the_json_input_check_with_its_words(name: str, value: str, check: Any) -> None:
    # One way to check a value: settings hold their text to the checks the input files use.
    with pytest.raises(ConfigError) as error:
        load_settings({**REQUIRED, name: value})
    assert f"app setting {name}={value!r} is invalid; expected {check.expected}" in str(error.value)


def _rules_with_channels(tmp_path: Path) -> Path:
    path = tmp_path / "rules.json"
    groups = {"ops": {"email": ["ops@example.com"], "slack": "OPS_SLACK",
                      "webhook": {"url_setting": "OPS_HOOK", "secret_setting": "OPS_HOOK_SECRET"}}}  # fmt: skip
    path.write_text(json.dumps({"recipient_groups": groups, "rules": [{"name": "u", "kind": "unpriced"}]}, indent=1))
    return path


SIGNING_SECRET = "whsec_" + "a2V5LW9mLWF0LWxlYXN0LTI0LWJ5dGVzLWxvbmc="


def test_channel_settings_named_by_the_rules_file_are_read_at_start(tmp_path: Path) -> None:
    environ = {**REQUIRED, "ALERT_RULES_FILE": str(_rules_with_channels(tmp_path)), "OPS_SLACK": "",
               "OPS_HOOK": "https://hooks.example.com/x", "OPS_HOOK_SECRET": SIGNING_SECRET}  # fmt: skip
    settings = load_settings(environ)
    assert dict(settings.alerts.channel_settings) == {
        "OPS_SLACK": "", "OPS_HOOK": "https://hooks.example.com/x", "OPS_HOOK_SECRET": SIGNING_SECRET,
    }  # fmt: skip
    assert "hooks.example.com" not in repr(settings) and SIGNING_SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"OPS_HOOK": None},
         "app setting OPS_HOOK (named by {rules}:8: recipient_groups.ops.webhook) is missing; expected the webhook "
         "webhook URL (https)"),
        ({"OPS_HOOK": "http://hooks.example.com/x"},
         "app setting OPS_HOOK (named by {rules}:8: recipient_groups.ops.webhook) is not an https URL (http is "
         "allowed only to 127.0.0.1 or localhost, the local webhook sink)"),
        ({"OPS_SLACK": "hooks.slack.com/services/T/B/X"}, "app setting OPS_SLACK (named by {rules}:7: "
         "recipient_groups.ops.slack) is not an https URL"),
        ({"OPS_HOOK": "https://user:pw@hooks.example.com/x"}, "app setting OPS_HOOK (named by {rules}:8: "
         "recipient_groups.ops.webhook) has credentials in it"),
        ({"OPS_SLACK": "@Microsoft.KeyVault(VaultName=kv;SecretName=ops-slack)"},
         "app setting OPS_SLACK (named by {rules}:7: recipient_groups.ops.slack) is a Key Vault reference the "
         "platform did not resolve"),
        ({"OPS_HOOK_SECRET": "hunter2"}, "app setting OPS_HOOK_SECRET=<hidden> (named by {rules}:8: "
         'recipient_groups.ops.webhook) is invalid; expected "whsec_" followed by base64'),
    ],
)  # fmt: skip
def test_a_bad_channel_setting_stops_the_app_at_start_naming_setting_file_and_field(
    tmp_path: Path, values: dict[str, str | None], problem: str
) -> None:
    rules = _rules_with_channels(tmp_path)
    good = {"OPS_SLACK": "", "OPS_HOOK": "https://hooks.example.com/x", "OPS_HOOK_SECRET": SIGNING_SECRET}
    environ = {**REQUIRED, "ALERT_RULES_FILE": str(rules), **good}
    environ.update({name: value for name, value in values.items() if value is not None})
    for name in [name for name, value in values.items() if value is None]:  # not set at all
        del environ[name]
    with pytest.raises(ConfigError) as error:
        load_settings(environ)
    assert problem.format(rules=rules) in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_local_sink_may_be_plain_http_on_loopback_and_a_channel_may_not_name_an_app_setting(
    tmp_path: Path,
) -> None:
    rules = _rules_with_channels(tmp_path)
    local = {"OPS_SLACK": "http://127.0.0.1:7806/slack/ops", "OPS_HOOK": "http://localhost:7806/webhook/ops"}
    settings = load_settings({**REQUIRED, "ALERT_RULES_FILE": str(rules), "OPS_HOOK_SECRET": SIGNING_SECRET, **local})
    assert settings.alerts.channel_settings["OPS_SLACK"] == "http://127.0.0.1:7806/slack/ops"
    rules.write_text(rules.read_text().replace("OPS_HOOK_SECRET", "ALERT_SMTP_PASSWORD"))
    with pytest.raises(ConfigError, match=r"app setting ALERT_SMTP_PASSWORD .* is one of the app's own settings"):
        load_settings({**REQUIRED, "ALERT_RULES_FILE": str(rules), **local})
