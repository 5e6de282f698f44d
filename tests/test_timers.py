"""shared/timers.py: one entry per timer, the settings' sections handed on; the import direction it keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared import timers
from shared.billing.outputs import BillReport
from shared.costs.run import CostRunSummary, CostUploadError
from shared.meters.outputs import Allowance, BypassReport
from tests import ROOT
from tests.support.sections import settings_with

SHARED = ROOT / "shared"


def _summary() -> CostRunSummary:
    now = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
    return CostRunSummary(started_at=now, revision=now, price_version="v1")


def test_costs_timer_runs_the_alert_rules_on_what_the_costs_run_produced(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with()
    summary = _summary()
    seen: list[tuple[Any, Any]] = []
    report = BypassReport(enabled=False)
    monkeypatch.setattr("shared.costs.run.run_costs", lambda section: summary if section is settings.costs else None)
    monkeypatch.setattr(
        "shared.meters.run.check_bypass",
        lambda section, costs, allowance: report if (section, costs) == (settings.meters, summary) else None,
    )
    bill = BillReport(enabled=False)

    def check_bill(section: Any) -> BillReport | None:
        seen.append("bill")
        return bill if section is settings.bill else None

    monkeypatch.setattr("shared.billing.run.check_bill", check_bill)
    monkeypatch.setattr(
        "shared.focus.export.export_focus",
        lambda section, final_through: seen.append(("focus", section, final_through)),
    )
    monkeypatch.setattr(
        "shared.alerts.run.evaluate_and_notify",
        lambda section, costs, bypass, bills: seen.append((section, costs, bypass, bills)),
    )
    assert timers.costs_timer(settings) is summary
    # The FOCUS export after the bill check, on the days the costs run made final, then the alert rules.
    assert seen == ["bill", ("focus", settings.focus, summary.final_through), (settings.alerts, summary, report, bill)]


def test_costs_timer_alerts_on_what_did_upload_then_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_with()
    failure = CostUploadError(_summary(), ["window 10:00: HTTP 503"])
    seen: list[Any] = []

    def run_costs(section: Any) -> CostRunSummary:
        raise failure

    monkeypatch.setattr("shared.costs.run.run_costs", run_costs)
    monkeypatch.setattr(
        "shared.meters.run.check_bypass", lambda section, costs, allowance: BypassReport(enabled=False)
    )
    monkeypatch.setattr("shared.billing.run.check_bill", lambda section: BillReport(enabled=False))
    monkeypatch.setattr(
        "shared.alerts.run.evaluate_and_notify", lambda section, costs, bypass, bills: seen.append(costs)
    )
    with pytest.raises(CostUploadError) as raised:
        timers.costs_timer(settings)
    assert raised.value is failure
    assert seen == [failure.summary]


def test_traffic_timer_hands_the_traffic_section_and_the_apps_ingestion_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_with()
    calls: list[tuple[Any, Any]] = []
    monkeypatch.setattr("shared.traffic.run.run_traffic", lambda section, factory: calls.append((section, factory)))
    timers.traffic_timer(settings)
    assert calls == [(settings.traffic, settings.azure.logs_ingestion_client)]



@pytest.mark.parametrize(
    ("rules", "allowance"),
    [
        # The sample's gateway-bypass rule: 1% of the exact tokens, 10% of the estimated ones.
        (None, Allowance(Decimal(1), Decimal(10))),
        # Two bypass rules: the one that fires first, share by share.
        ('[{"name": "a", "kind": "bypass", "tolerance_percent": 2, "stream_tolerance_percent": 5},'
         ' {"name": "b", "kind": "bypass", "tolerance_percent": 0.5}]', Allowance(Decimal("0.5"), Decimal(5))),
        ('[{"name": "u", "kind": "unpriced", "scope": "all"}]', None),  # no bypass rule: no allowance to write
        ("[{", None),  # unreadable: the alert run reports it, naming file and line
    ],
)  # fmt: skip
def test_the_bypass_check_writes_the_strictest_bypass_rules_allowance(
    tmp_path: Path, rules: str | None, allowance: Allowance | None
) -> None:
    path = ROOT / "shared" / "alerts" / "alerts.sample.json"
    if rules is not None:
        path = tmp_path / "rules.json"
        path.write_text('{"recipient_groups": {"p": ["p@example.com"]}, "rules": ' + rules + "}", encoding="utf-8")
    assert timers.bypass_allowance(settings_with(ALERT_RULES_FILE=str(path)).alerts) == allowance
