"""The `bypass` alert through the alert run: fired once per day and level, held while the comparison is pending
(no resolve from missing evidence), resolved once a comparison is within tolerance again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.alerts.run import AlertClients, evaluate_and_notify
from shared.alerts.state import InMemoryAlertStateStore
from shared.email.delivery import InMemoryTransport
from shared.meters.outputs import BypassReport, WindowComparison
from tests.support.costs import CostStack
from tests.support.meters import BYPASS_RULES, hour_window
from tests.support.sections import alert_section

WINDOW = hour_window(datetime(2026, 11, 30, 8, tzinfo=UTC))
NOW = WINDOW.end + timedelta(minutes=20)


def _report(status: str, account_tokens: int, gateway_tokens: int = 10_000) -> BypassReport:
    comparison = WindowComparison(
        WINDOW, "gpt-5.6-terra", "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a",
        status, gateway_tokens, 0, account_tokens, 0,  # type: ignore[arg-type]
    )  # fmt: skip
    reasons = ["ai-local: HTTP 503: ServiceUnavailable after 3 attempts"] if status == "pending" else []
    return BypassReport(enabled=True, comparisons=[comparison], pending_reasons=reasons)


def test_a_bypass_alert_fires_once_holds_while_pending_and_resolves_when_the_gap_closes(
    make_cost_stack: Callable[..., CostStack], tmp_path: Path
) -> None:
    stack = make_cost_stack()
    rules_file = tmp_path / "alerts.json"
    rules_file.write_text(BYPASS_RULES)
    settings = alert_section(
        rules_file=rules_file, workspace_id=stack.config.workspace_id, query_endpoint=stack.monitor.url,
        ca_bundle=stack.monitor.ca_path,
    )  # fmt: skip
    transport = InMemoryTransport()
    clients = AlertClients(query=stack.query, state=InMemoryAlertStateStore(), transport=transport)

    def run(report: BypassReport, minutes: int = 0) -> list[str]:
        summary = evaluate_and_notify(settings, None, report, now=NOW + timedelta(minutes=minutes), clients=clients)
        return [f"{n.kind} {n.level}" for n in summary.notifications]

    assert run(_report("compared", 10_600)) == []  # 600 tokens: under the rule's 1000-token minimum
    assert run(_report("compared", 12_000)) == ["fired warning"]  # 2000 over: 16.7% of the account's, under 20%
    assert run(_report("compared", 12_000), 15) == []  # once per day and level
    assert run(_report("pending", 0), 30) == []  # metrics down: nothing known, nothing resolved
    assert clients.state.load()["gateway-bypass|gpt-5.6-terra"].open
    assert run(_report("compared", 13_000), 45) == ["escalated critical"]  # 23% of the account's tokens missed
    assert run(_report("compared", 10_000), 60) == ["resolved "]
    subjects = [sent.message["Subject"] for sent in transport.sent]
    assert "gpt-5.6-terra" in subjects[0] and "not seen by the gateway" in subjects[0]
