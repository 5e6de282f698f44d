"""The chargeback reports (issue 15): a simulated month through the real monitor stand-in, KQL and costs run, reported
to two recipient groups with the in-memory state store and transport (the alert run's twins): the month's figures
against its final windows to the micro-unit, the change vs the month before, provisional then final, once per period
and group across runs and after a crash between send and state write, and bad report configuration."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from shared.alerts.run import AlertClients
from shared.alerts.state import AlertRecord, InMemoryAlertStateStore
from shared.costs.run import run_costs
from shared.email.delivery import InMemoryTransport
from shared.errors import ConfigError, InputFileError
from shared.reports.plan import last_ended, load_report_plan
from shared.reports.run import send_reports
from tests import ROOT
from tests.support.costs import CostStack, usage_rows, write_price_table
from tests.support.sections import alert_section, settings_with

# The last month that ended before today (the stand-in keeps what it is given; the costs run prices any past day).
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
MONTH = last_ended("monthly", TODAY)
BEFORE = MONTH.previous()
MONTH_END = MONTH.end
GROUPS = {"finops": ["finops@example.com"], "platform": ["platform@example.com", "ops@example.com"]}


def _rules(tmp_path: Path, reports: Any, groups: dict[str, list[str]] | None = None) -> Path:
    path = tmp_path / "rules.json"
    document = {
        "currency": "USD",
        "recipient_groups": groups or GROUPS,
        "reports": reports,
        "rules": [{"name": "budget", "kind": "budget", "scope": "all", "period": "month", "amount": 1000,
                   "recipients": "finops"}],
    }  # fmt: skip
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


class _Crash(Exception):
    """The host killed between the transport's acceptance and the "sent" write."""


class _CrashingStore(InMemoryAlertStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.crash = False

    def write(self, record: AlertRecord) -> AlertRecord | None:
        if self.crash and record.sent_at is not None:
            raise _Crash(record.key)
        return super().write(record)


class _NoQuery:
    def query_workspace(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no query expected")


class World:
    def __init__(self, stack: CostStack, tmp_path: Path) -> None:
        self.stack = stack
        self.state = _CrashingStore()
        self.transport = InMemoryTransport()
        rules = _rules(tmp_path, [{"period": "monthly", "recipients": "finops"},
                                  {"period": "monthly", "recipients": "platform", "top_movers": 2}])  # fmt: skip
        self.settings = alert_section(
            ca_bundle=stack.monitor.ca_path, workspace_id=stack.config.workspace_id, query_endpoint=stack.monitor.url,
            rules_file=rules, report_periods=("monthly",), lease_seconds=600,
        )  # fmt: skip
        self.final_through: datetime | None = None

    def costs(self, at: datetime) -> Any:
        summary = run_costs(self.stack.settings, now=at, clients=self.stack.clients())
        self.final_through = summary.final_through
        return summary

    def report(self, at: datetime, *, query: Any = None) -> Any:
        clients = AlertClients(query=query or self.stack.query, state=self.state, transport=self.transport)
        return send_reports(self.settings, self.final_through, now=at, clients=clients, wall_clock=lambda: at)

    def month_micros(self, start: datetime, end: datetime) -> int:
        """The period's cost as an independent reader sums the final windows: latest revision per window."""
        rows = self.stack.kql(
            "TokenCostSummary_CL | summarize arg_max(Revision, *) by WindowStart, Deployment, SubscriptionId, UserId, "
            f"ApiId | where WindowStart >= datetime({start:%Y-%m-%d}) and WindowStart < datetime({end:%Y-%m-%d}) "
            "| summarize Micros = sum(coalesce(tolong(round(TotalCost * 1000000)), long(0)))"
        )
        return int(rows[0]["Micros"] or 0)


@pytest.fixture
def world(make_cost_stack: Callable[..., CostStack], tmp_path: Path) -> World:
    """Two months of calls (daily cost windows): three teams, one model unpriced, some calls streamed; the reported
    month spends more than the one before, and one team is new in it."""
    table = write_price_table(tmp_path / "prices.json", "report-test",
                              **{"gpt-5.6-luna": {"input": 0.2, "cached_input": 0.02, "output": 1.2}})  # fmt: skip
    stack = make_cost_stack(price_table_path=table, deployment_map_path=None, window_minutes=1440,
                            recompute_windows=80)  # fmt: skip
    rows = []
    for month, scale in ((BEFORE, 1), (MONTH, 2)):
        day = month.start
        while day < month.end:
            at = day + timedelta(hours=10, minutes=7)
            rows += usage_rows(at, 12_345 * scale, 6_789, 1_000, requests=3, deployment="gpt-5.6-luna",
                               subscription="team-a", user="alice")  # fmt: skip
            rows += usage_rows(at, 7_777, 3_333 * scale, requests=2, deployment="gpt-5.6-luna",
                               subscription="team-b", user="bob", streamed="True")  # fmt: skip
            rows += usage_rows(at, 500, 500, deployment="mystery-model", subscription="team-b", user="carol")
            if month is MONTH:
                rows += usage_rows(at, 1_001, 999, deployment="gpt-5.6-luna", subscription="team-c", user="dave")
            day += timedelta(days=1)
    stack.insert_metrics(rows)
    return World(stack, tmp_path)


def _csv(message: EmailMessage) -> tuple[str, list[dict[str, str]]]:
    attachment = next(part for part in message.iter_attachments() if part.get_content_type() == "text/csv")
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return str(attachment.get_filename()), list(csv.DictReader(io.StringIO(payload.decode("utf-8"), newline="")))


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_a_monthly_report_equals_its_final_windows_to_the_micro_unit_with_the_change_vs_the_month_before(
    world: World,
) -> None:
    world.costs(MONTH_END + timedelta(minutes=30))

    summary = world.report(MONTH_END + timedelta(minutes=31))

    assert summary.problems == [] and len(summary.sent) == 2, summary.line()
    by_group = {sent.recipients: sent.message for sent in world.transport.sent}
    message = by_group[("finops@example.com",)]
    name, rows = _csv(message)
    assert name == f"chargeback-monthly-{MONTH.key}-final.csv"
    month, before = world.month_micros(MONTH.start, MONTH.end), world.month_micros(BEFORE.start, BEFORE.end)
    assert month > before > 0
    # Every caller of both months, each amount exact: the file adds up to the final windows to the micro-unit.
    assert sum(Decimal(row["Cost"]) for row in rows) * 1_000_000 == month
    assert sum(Decimal(row["PreviousCost"]) for row in rows) * 1_000_000 == before
    assert all(Decimal(row["Change"]) == Decimal(row["Cost"]) - Decimal(row["PreviousCost"]) for row in rows)
    assert {row["Status"] for row in rows} == {"final"}
    dave = next(row for row in rows if row["UserId"] == "dave")
    assert (dave["SubscriptionId"], Decimal(dave["PreviousCost"])) == ("team-c", 0)  # new this month
    carol = next(row for row in rows if row["UserId"] == "carol")
    days = (MONTH.end - MONTH.start).days  # unpriced: no cost, never a guess; its tokens counted
    assert (carol["Cost"], carol["Currency"], carol["UnpricedTokens"], carol["TotalTokens"]) == (
        "0.000000", "", str(1000 * days), str(1000 * days))
    # The subject and body: the total and its change, the provisional word absent.
    total, previous = Decimal(month).scaleb(-6), Decimal(before).scaleb(-6)
    subject = str(message["Subject"])
    assert not subject.startswith("[PROVISIONAL]") and f"monthly {MONTH.key}" in subject
    assert f"${round(total, 2):,}" in subject and f"{round((total - previous) * 100 / previous, 1):+}%" in subject
    html = _html(message)
    for heading in ("Cost by team (APIM subscription)", "Top movers", "Cost by model", "Cost by deployment type",
                    "Cost by user"):  # fmt: skip
        assert heading in html
    assert "Provisional." not in html and "Unpriced tokens" in html and "rests on APIM&#39;s estimates" in html
    assert "Bill check:" in html
    # The platform group asked for two movers: the two callers whose cost changed most.
    platform = by_group[("platform@example.com", "ops@example.com")]
    movers = _html(platform).split("Top movers", 1)[1].split("</table>", 1)[0]
    assert movers.count("<tr style=\"border-bottom") == 2 and "team-a / alice / gpt-5.6-luna" in movers


def test_a_report_is_provisional_until_the_months_windows_are_final_then_final_once_per_group(world: World) -> None:
    # Five minutes after the month: its last window is not final yet (COST_INGESTION_DELAY_MINUTES 15).
    world.costs(MONTH_END + timedelta(minutes=5))
    first = world.report(MONTH_END + timedelta(minutes=6))
    again = world.report(MONTH_END + timedelta(minutes=7))

    assert len(first.sent) == 2 and all("provisional" in sent for sent in first.sent), first.line()
    assert again.sent == [] and again.already_sent == 2
    provisional = world.transport.sent[0].message
    assert str(provisional["Subject"]).startswith("[PROVISIONAL] ")
    assert "Provisional." in _html(provisional) and "PROVISIONAL:" in str(provisional.get_body(("plain",)))
    _, rows = _csv(provisional)
    assert {row["Status"] for row in rows} == {"provisional"}

    # Late metrics land in the month's last window; once final, the final report follows, with them.
    world.stack.insert_metrics(usage_rows(MONTH_END - timedelta(hours=2), 1_000_000, 0, deployment="gpt-5.6-luna",
                                          subscription="team-a", user="alice"))  # fmt: skip
    world.costs(MONTH_END + timedelta(minutes=30))
    final = world.report(MONTH_END + timedelta(minutes=31))
    # Once every group has the final report, later runs of the period do not even read the summaries.
    later = world.report(MONTH_END + timedelta(days=3), query=_NoQuery())

    assert len(final.sent) == 2 and all("final" in sent for sent in final.sent), final.line()
    assert later.sent == [] and later.already_sent == 2
    assert len(world.transport.sent) == 4
    messages = [sent.message for sent in world.transport.sent]
    assert len({str(message["Message-ID"]) for message in messages}) == 4
    _, final_rows = _csv(messages[2])
    assert sum(Decimal(row["Cost"]) for row in final_rows) * 1_000_000 == world.month_micros(MONTH.start, MONTH.end)
    assert sum(Decimal(row["Cost"]) for row in final_rows) - sum(Decimal(row["Cost"]) for row in rows) == Decimal(
        "0.2"
    )  # the late million input tokens at 0.2 per 1M


def test_a_crash_between_send_and_state_write_sends_the_same_email_again_once_after_the_lease(world: World) -> None:
    world.costs(MONTH_END + timedelta(minutes=30))
    world.state.crash = True
    with pytest.raises(_Crash):
        world.report(MONTH_END + timedelta(minutes=31))
    assert len(world.transport.sent) == 1  # out, but its "sent" never written
    first = world.transport.sent[0].message
    world.state.crash = False

    within_lease = world.report(MONTH_END + timedelta(minutes=32))
    assert within_lease.skipped == 1 and len(within_lease.sent) == 1  # the other group; the claimed one left alone
    after_lease = world.report(MONTH_END + timedelta(minutes=45))
    settled = world.report(MONTH_END + timedelta(hours=2))

    assert len(after_lease.sent) == 1 and after_lease.resent == 1, after_lease.line()
    resent = world.transport.sent[-1]
    assert resent.recipients == world.transport.sent[0].recipients
    assert str(resent.message["Message-ID"]) == str(first["Message-ID"])
    assert settled.sent == [] and settled.already_sent == 2
    assert len(world.transport.sent) == 3  # two groups, one of them twice: never more per crash


def test_a_failed_send_is_retried_by_the_next_run_under_the_same_message_id(world: World) -> None:
    world.costs(MONTH_END + timedelta(minutes=30))
    world.transport.fail_next(2)
    failed = world.report(MONTH_END + timedelta(minutes=31))
    retried = world.report(MONTH_END + timedelta(minutes=46))

    assert failed.sent == [] and len(failed.problems) == 2 and "NOT SENT" in failed.line()
    assert len(retried.sent) == 2 and len(world.transport.sent) == 2


def test_no_report_without_a_reports_section_or_with_report_periods_none(world: World, tmp_path: Path) -> None:
    world.costs(MONTH_END + timedelta(minutes=30))
    world.settings = replace(world.settings, report_periods=())
    assert not world.report(MONTH_END + timedelta(minutes=31)).enabled
    assert world.transport.sent == []


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ([{"period": "daily", "recipients": "finops"}], r":\d+: reports\[0\]\.period: expected one of weekly, monthly"),
        ([{"period": "monthly", "recipients": "finance"}],
         r":\d+: reports\[0\]\.recipients: expected one of the recipient_groups: finops, platform, got \"finance\""),
        ([{"period": "monthly", "recipients": "finops"}, {"period": "monthly", "recipients": "finops"}],
         r":\d+: reports\[1\]\.recipients: the monthly report to finops is listed twice"),
        ([{"period": "weekly", "recipients": "finops", "top_movers": 0}], r"reports\[0\]\.top_movers: expected"),
        ([{"period": "weekly", "recipients": "finops", "top": 3}], r"reports\[0\]\.top: unknown field of a report"),
        ({"monthly": "finops"}, r"reports: expected a non-empty list"),
        ([], r"reports: expected a non-empty list"),
    ],
)
def test_a_bad_reports_section_fails_naming_file_line_and_field(tmp_path: Path, reports: Any, message: str) -> None:
    path = _rules(tmp_path, reports)
    with pytest.raises(InputFileError, match=re.escape(str(path)) + ".*" + message):
        load_report_plan(path)


def test_the_sample_rules_file_names_reports_for_its_groups() -> None:
    plan = load_report_plan(ROOT / "shared" / "alerts" / "alerts.sample.json")
    assert {(target.period, target.group) for target in plan} == {("monthly", "finops"), ("weekly", "platform")}


@pytest.mark.parametrize("value", ["daily", "weekly,weekly", "monthly;weekly", "", "weekly,"])
def test_a_bad_report_periods_setting_fails_at_start_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"app setting REPORT_PERIODS={value!r} is invalid")):
        settings_with(REPORT_PERIODS=value)


def test_report_periods_reads_each_period_once_in_order() -> None:
    assert settings_with(REPORT_PERIODS="monthly, weekly").alerts.report_periods == ("weekly", "monthly")
    assert settings_with(REPORT_PERIODS="none").alerts.report_periods == ()
    assert settings_with().alerts.report_periods == ("weekly", "monthly")


@pytest.mark.parametrize(
    ("kind", "now", "start", "end", "key"),
    [
        ("monthly", datetime(2026, 11, 30, 13, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC),
         datetime(2026, 11, 1, tzinfo=UTC), "2026-10"),
        ("monthly", datetime(2026, 1, 1, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC),
         datetime(2026, 1, 1, tzinfo=UTC), "2025-12"),
        ("weekly", datetime(2026, 11, 30, 0, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC),
         datetime(2026, 11, 30, tzinfo=UTC), "2026-W48"),  # a Monday at 00:00: last week just ended
        ("weekly", datetime(2026, 1, 3, tzinfo=UTC), datetime(2025, 12, 22, tzinfo=UTC),
         datetime(2025, 12, 29, tzinfo=UTC), "2025-W52"),
    ],
)  # fmt: skip
def test_the_reported_period_is_the_latest_that_ended(
    kind: str, now: datetime, start: datetime, end: datetime, key: str
) -> None:
    period = last_ended(kind, now)
    assert (period.start, period.end, period.key) == (start, end, key)
    assert period.previous().end == period.start


def test_the_bill_status_counts_days_and_sums_only_priced_comparisons(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compared day with no cost on either side has no currency (the bill demo's stack mailed such a week): it is
    compared, and adds no amount in no currency."""
    import shared.billing.run as billing
    from shared.billing.outputs import DayComparison
    from shared.reports.figures import bill_status

    days = [datetime(2026, 10, day, tzinfo=UTC) for day in (1, 2, 3, 4)]
    account = "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a"

    def comparison(day: datetime, status: Any, currency: str, ours: str, billed: str) -> DayComparison:
        return DayComparison(day, account, status, currency, Decimal(ours), Decimal(billed), 0, "", "")

    found = {
        (days[0], "a"): comparison(days[0], "compared", "", "0", "0"),
        (days[1], "a"): comparison(days[1], "compared", "USD", "1.5", "1.65"),
        (days[2], "a"): comparison(days[2], "pending", "USD", "2", "0"),
    }
    monkeypatch.setattr(billing, "latest_comparisons", lambda client, workspace, asked: found)

    status = bill_status(None, "workspace", days)  # type: ignore[arg-type]

    assert (status.days, status.compared, status.pending, status.not_settled) == (4, 2, 1, 1)
    assert (status.our_micros_by_currency, status.billed_micros_by_currency) == ({"USD": 1_500_000},
                                                                                 {"USD": 1_650_000})
