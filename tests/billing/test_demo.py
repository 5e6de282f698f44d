"""The bill demo (README "The bill demo", standins/history.py) on the whole local stack as `BILL_DEMO=1 make run`
starts it: yesterday's history seeded by the stack, the app's own costs timer fired through the local Functions
host, and what it leaves: a bill comparison of yesterday in BillReconciliation_CL naming the price difference the
Cost Management stand-in bills, a bill_gap email in the outbox, and yesterday's bypass comparisons clean (the
account's meters and the gateway's metrics hold the same calls)."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest
from azure.monitor.query import LogsQueryStatus

from shared.billing.outputs import PRICE
from shared.logs.kql import load_query
from standins.history import DAYS_FILE
from standins.stack import running_stack
from tests.support.stack import logs_client, run_timer

pytestmark = pytest.mark.slow


def _rows(client: object, workspace_id: str, query: str) -> list[dict[str, object]]:
    result = client.query_workspace(workspace_id, query, timespan=timedelta(days=4))  # type: ignore[attr-defined]
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def _text(message: Message) -> str:
    parts = message.walk() if message.is_multipart() else [message]
    return "".join(
        str(part.get_payload(decode=True).decode("utf-8"))  # type: ignore[union-attr]
        for part in parts
        if part.get_content_type() == "text/plain"
    )


def test_the_bill_demo_compares_yesterday_with_the_bill_and_mails_a_bill_gap(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    if now - now.replace(hour=0, minute=0, second=0, microsecond=0) < timedelta(minutes=7):
        pytest.skip("yesterday settles 6 minutes after midnight UTC in the demo (BILL_CHECK_SETTLE_HOURS 0.1)")
    data_dir: Path = tmp_path_factory.mktemp("bill-demo")
    with running_stack(data_dir, with_host=True, host_schedules=False, bill_demo=True) as stack:
        [seeded] = json.loads((data_dir / DAYS_FILE).read_text(encoding="utf-8"))["metrics"]
        day = datetime.fromisoformat(seeded).replace(tzinfo=UTC)
        assert stack.settings["BILL_CHECK_SETTLE_HOURS"] == "0.1"

        costs = run_timer(stack, "costs")

        assert costs["status"] == "Succeeded", costs
        client = logs_client(stack, monkeypatch)
        workspace = stack.info.monitor.workspace_id
        query = load_query("bill-reconciliation-latest.kql", {"start_time": day, "end_time": day + timedelta(days=1)})
        [whole] = [row for row in _rows(client, workspace, query) if row["MeterGroup"] == "all"]
        assert (whole["Status"], whole["LikelyCause"]) == ("compared", PRICE)
        assert abs(float(whole["GapPercent"]) - 15.0) < 0.01  # type: ignore[arg-type]
        assert float(whole["OurCost"]) > 20  # type: ignore[arg-type]
        mails = [email.message_from_bytes(path.read_bytes()) for path in sorted(stack.info.outbox_dir.glob("*.eml"))]
        [bill] = [mail for mail in mails if f"{day:%Y-%m-%d}" in str(mail["Subject"])]
        assert "ai-local" in str(bill["Subject"]) and "discount/price differs" in _text(bill)
        query = load_query("meter-comparison-latest.kql", {"start_time": day, "end_time": day + timedelta(days=1)})
        meters = _rows(client, workspace, query)
        assert len(meters) == 24 * 3  # every window of the day, the three deployments the history called
        assert {(row["Status"], row["GapTokens"]) for row in meters} == {("compared", 0)}
