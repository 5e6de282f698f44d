"""The rules file: the sample loads; each kind of mistake fails at load naming the file, rule and field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.rules import Scope, load_rules, parse_rules
from shared.errors import InputFileError
from tests import ROOT

SAMPLE = ROOT / "shared" / "alerts" / "alerts.sample.json"
GROUPS = {"platform": ["platform@example.com"]}


def rules_file(tmp_path: Path, *rules: dict[str, Any], groups: Any = None) -> Path:
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps({"currency": "USD", "recipient_groups": groups or GROUPS, "rules": list(rules)}))
    return path


def test_sample_loads_with_every_rule_kind() -> None:
    rules = load_rules(SAMPLE)
    assert {rule.kind for rule in rules.rules} == {
        "threshold", "budget", "spike", "unpriced", "no_metrics", "reconciliation", "bypass", "bill_gap"
    }  # fmt: skip
    bill = rules.rule("bill-gap")
    assert bill is not None and (bill.tolerance_percent, bill.critical_percent, bill.min_amount) == (5, 20, 1)
    bypass = rules.rule("gateway-bypass")
    assert bypass is not None and (bypass.tolerance_percent, bypass.stream_tolerance_percent) == (1, 10)
    assert (bypass.min_tokens, bypass.critical_percent) == (1000, 20)
    demo = rules.rule("demo-daily-budget")
    assert demo is not None and demo.amount == Decimal("0.05") and demo.scope == Scope(None)
    assert demo.percents == (Decimal(50), Decimal(80), Decimal(100))
    assert rules.recipient_groups["finops"] == ("finops@example.com", "platform-team@example.com")


@pytest.mark.parametrize(
    ("rule", "field", "fragment"),
    [
        ({"kind": "threshold", "metric": "dollars", "window": "day", "warning": 1}, "metric", "cost, tokens, requests"),
        ({"kind": "threshold", "metric": "cost", "window": "day", "scope": "team:a", "warning": 1}, "scope", "each:"),
        ({"kind": "threshold", "metric": "cost", "window": "week", "warning": 1}, "window", "hour, day, month"),
        ({"kind": "threshold", "metric": "cost", "window": "day", "warning": 10, "critical": 5}, "warning", "below"),
        ({"kind": "budget", "amount": 0}, "amount", "greater than 0"),
        ({"kind": "budget", "amount": -5}, "amount", "greater than 0"),
        ({"kind": "budget", "amount": 10, "thresholds_percent": [80, 50]}, "thresholds_percent", "increasing"),
        ({"kind": "spike", "metric": "cost", "min_value": 1, "factor_warning": 0.5}, "factor_warning", "> 1"),
        ({"kind": "threshold", "metric": "cost", "window": "day", "warning": 1, "recipients": "nobody"},
         "recipients", "platform"),
        ({"kind": "budget", "amount": 10, "amout": 5}, "amout", "unknown field of a budget rule"),
        ({"kind": "alarm"}, "kind", "threshold"),
        ({"kind": "bypass", "critical_percent": 0}, "critical_percent", "> 0"),
        ({"kind": "bypass", "tolerance_percent": -1}, "tolerance_percent", "0 or more"),
        ({"kind": "bypass", "windows": 2}, "windows", "unknown field of a bypass rule"),
    ],
)  # fmt: skip
def test_bad_rule_names_file_rule_and_field(tmp_path: Path, rule: dict[str, Any], field: str, fragment: str) -> None:
    path = rules_file(tmp_path, {"name": "ok-rule", "kind": "unpriced"}, {"name": "bad-rule", **rule})
    with pytest.raises(InputFileError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert str(path) in message
    line = next(line for line in message.splitlines() if "rules[1]" in line)
    assert line.startswith(f"{path}:1: ") and f"rules[1].{field}: " in line and fragment in line, message
    assert "rules[0]" not in message


def test_invalid_address_names_the_group(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path, {"name": "r", "kind": "unpriced"}, groups={"ops": ["ops@example.com", "not an address"]}
    )
    with pytest.raises(
        InputFileError,
        match=r"alerts.json: invalid alert rules:\n.*alerts.json:1: recipient_groups\.ops\[1\]: "
        r'expected an email address.*got "not an address"',
    ):
        load_rules(path)


def test_header_injection_address_is_refused() -> None:
    with pytest.raises(InputFileError, match=r"x\.json:1: recipient_groups\.ops\[0\]: expected an email address"):
        parse_rules(
            json.dumps(
                {
                    "recipient_groups": {"ops": ["a@example.com\r\nBcc: x@evil.test"]},
                    "rules": [{"name": "r", "kind": "unpriced"}],
                }
            ),
            source="x.json",
        )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = rules_file(
        tmp_path,
        {"name": "a", "kind": "budget", "amount": -1},
        {"name": "b", "kind": "threshold", "metric": "cost", "window": "year", "warning": 1},
        {"kind": "unpriced"},
    )
    with pytest.raises(InputFileError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert "rules[0].amount: expected a number greater than 0, got -1" in message
    assert 'rules[1].window: expected one of hour, day, month, got "year"' in message
    assert "rules[2].name: missing" in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match=r"missing\.json: cannot read"):
        load_rules(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"rules": [\n  {"name": "x",}\n]}')
    with pytest.raises(InputFileError, match=r"broken.json:2:\d+: not valid JSON"):
        load_rules(broken)


def test_duplicate_names_are_refused(tmp_path: Path) -> None:
    path = rules_file(tmp_path, {"name": "x", "kind": "unpriced"}, {"name": "x", "kind": "unpriced"})
    with pytest.raises(InputFileError, match=r'rules\[1\]\.name: "x" is used by rules\[0\]; names must be unique'):
        load_rules(path)


def test_the_sample_routes_the_demo_budget_to_email_teams_and_slack() -> None:
    rules = load_rules(SAMPLE)
    demo = rules.rule("demo-daily-budget")
    assert demo is not None and demo.recipients == "finops"
    assert [(t.kind, t.url_setting) for t in rules.channels["finops"]] == [
        ("teams", "ALERT_TEAMS_FINOPS_URL"), ("slack", "ALERT_SLACK_FINOPS_URL"),
    ]  # fmt: skip
    assert rules.channels["platform"] == () and rules.recipient_groups["platform"] == ("platform-team@example.com",)
    assert rules.channel_settings() == ["ALERT_TEAMS_FINOPS_URL", "ALERT_SLACK_FINOPS_URL"]


def test_a_group_names_its_channels_by_app_setting_and_may_go_without_email(tmp_path: Path) -> None:
    groups = {"ops": {"teams": "OPS_TEAMS", "webhook": {"url_setting": "OPS_HOOK", "secret_setting": "OPS_SECRET"}}}
    rules = load_rules(rules_file(tmp_path, {"name": "u", "kind": "unpriced", "recipients": "ops"}, groups=groups))
    assert rules.recipient_groups["ops"] == ()
    [teams, hook] = rules.channels["ops"]
    assert (hook.kind, hook.url_setting, hook.secret_setting) == ("webhook", "OPS_HOOK", "OPS_SECRET")
    assert teams.where == f"{tmp_path / 'alerts.json'}:1: recipient_groups.ops.teams"
    assert rules.channel_settings() == ["OPS_TEAMS", "OPS_HOOK", "OPS_SECRET"]


@pytest.mark.parametrize(
    ("group", "problem"),
    [
        ({"email": ["a@example.com"], "pager": "X"},
         "recipient_groups.ops.pager: unknown field of a recipient group (its channels); expected some of email, "
         "slack, teams, webhook"),
        ({"teams": "https://prod.logic.azure.com/workflows/x?sig=secret"},
         "recipient_groups.ops.teams: expected the name of an app setting (letters, digits, '_') that holds the URL, "
         "never the URL itself, got a URL (not shown)"),
        ({"slack": 7}, "recipient_groups.ops.slack: expected the name of an app setting (letters, digits, '_') that "
         "holds the URL, never the URL itself, got a number (not shown)"),
        ({"webhook": {"url_setting": "HOOK"}}, "recipient_groups.ops.webhook.secret_setting: missing"),
        ({}, "recipient_groups.ops: expected at least one channel: email, teams, slack, webhook"),
        ({"email": []}, "recipient_groups.ops.email: expected a non-empty list of email addresses"),
    ],
)  # fmt: skip
def test_a_bad_channel_is_refused_with_file_line_and_field(tmp_path: Path, group: Any, problem: str) -> None:
    path = rules_file(tmp_path, {"name": "u", "kind": "unpriced", "recipients": "ops"}, groups={"ops": group})
    with pytest.raises(InputFileError) as error:
        load_rules(path)
    assert f"{path}:1: {problem}" in str(error.value)
    assert "sig=secret" not in str(error.value)  # a webhook URL is a secret: never echoed
