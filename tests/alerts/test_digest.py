"""What a digest email says (shared/alerts/digest.py): subject, counts, order, badges, values, items.

How it is laid out and escaped: tests/email/test_render.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from shared.alerts.digest import TOP_PER_RULE_AND_LEVEL, digest_view, subject_line
from shared.alerts.findings import ChartBar, Contributor, Finding, Notification
from shared.alerts.rules import Rule, Scope
from tests import ROOT
from tools.screenshot_email import RULES_FILE, inline_html, sample_message

NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
BARS = tuple(ChartBar(f"11-{day:02d}", Decimal(day)) for day in range(18, 28))


def test_the_text_part_lists_contributors_and_names_the_rule() -> None:
    message = sample_message()
    _, text = inline_html(message)
    assert "Top contributors:" in text and "Rule: user-cost-spike in shared/alerts/alerts.sample.json" in text
    assert message["Subject"].startswith("[WARNING] ")
    assert (ROOT / RULES_FILE).is_file()  # the file the sample names is one a reader can open


def test_cost_alerts_say_how_much_rests_on_estimated_tokens() -> None:
    page, text = inline_html(sample_message())
    # The sample's rows have a third of their cost on streamed calls (APIM estimates those).
    note = "33.3% of this rests on estimated tokens: API Management estimates the token counts of streamed calls."
    assert note in text and note in page


def _finding(rule: Rule, **fields: object) -> Finding:
    base: dict[str, object] = dict(
        rule=rule, member="", scope_label="all traffic", period_key="2026-11-27", window_label="today",
        level="warning", rank=1, severity="warning", value=Decimal(5), threshold=Decimal(4), unit="USD",
        summary="$5.00 today", chart=BARS, chart_title="Cost per day",
    )  # fmt: skip
    return Finding(**{**base, **fields})  # type: ignore[arg-type]


def _notification(finding: Finding | None, **fields: object) -> Notification:
    base: dict[str, object] = dict(
        kind="fired", key="r|", rule_name="r", scope_label="all traffic", period_key="2026-11-27", level="warning",
        severity="warning", subject="all traffic: $5.00 today", finding=finding,
    )  # fmt: skip
    return Notification(**{**base, **fields})  # type: ignore[arg-type]


def test_the_subject_names_the_most_severe_alert_and_how_many_more() -> None:
    warning = _notification(None, subject="b: warned")
    critical = _notification(None, severity="critical", subject="a: paged\r\nBcc: x@evil.test")
    resolved = _notification(None, kind="resolved", severity="resolved", subject="c: back")
    assert subject_line([resolved]) == "[RESOLVED] c: back"
    view = digest_view([warning, resolved, critical], rules_file="r.json", generated_at=NOW)
    assert view.subject == "[CRITICAL] a: paged Bcc: x@evil.test (+2 more)"
    assert view.counts == "1 critical, 1 warning, 1 resolved" and view.generated_at == "2026-11-27 10:20 UTC"
    assert [item.badge for item in view.items] == ["CRITICAL", "WARNING", "RESOLVED"]


def test_badges_say_the_level_and_an_escalation() -> None:
    escalated = _notification(None, kind="escalated", severity="critical", level="critical")
    budget_step = _notification(None, level="80%")
    view = digest_view([escalated, budget_step], rules_file="r.json", generated_at=NOW)
    assert [item.badge for item in view.items] == ["CRITICAL · ESCALATED", "WARNING · 80%"]
    assert [item.color for item in view.items] == ["#b91c1c", "#b45309"]


def test_values_and_thresholds_read_in_the_rule_s_terms() -> None:
    budget = Rule(name="b", kind="budget", recipients="g", period="month", percents=(Decimal("50.0"), Decimal(100)))
    spike = Rule(name="s", kind="spike", recipients="g")
    health = Rule(name="h", kind="no_metrics", recipients="g")
    findings = [
        _finding(budget, value=Decimal("320.555"), threshold=Decimal(400)),
        _finding(spike, value=Decimal(12345678), threshold=Decimal("10.0"), unit="tokens"),
        _finding(health, value=Decimal("55.55"), threshold=None, unit="%"),
    ]
    items = digest_view([_notification(f) for f in findings], rules_file="r.json", generated_at=NOW).items
    assert [(item.value, item.threshold) for item in items] == [
        ("$320.56", "$400.00 budget (50%, 100%)"),
        ("12,345,678 tokens", "10.0× the baseline"),
        ("55.6%", "-"),
    ]
    labels = [item.kind_label for item in items]
    assert labels == ["budget", "spike against the usual", "pipeline health: token metrics missing"]


def test_an_item_carries_the_finding_s_story_as_plain_values() -> None:
    daily = Rule(name="daily", kind="threshold", recipients="g", description="the team's daily cap")
    finding = _finding(
        daily, detail="One user spent most.", estimated_percent=Decimal("12.5"),
        contributors=(Contributor("user", "bob", Decimal(4), Decimal("80.0")),),
    )  # fmt: skip
    (item,) = digest_view([_notification(finding, rule_name="daily")], rules_file="r.json", generated_at=NOW).items
    assert (item.scope, item.summary, item.subject) == ("all traffic", "$5.00 today", "all traffic: $5.00 today")
    assert item.sentences[0] == "One user spent most." and item.sentences[1].startswith("12.5% of this rests on")
    assert [dataclasses.astuple(c) for c in item.contributors] == [("user", "bob", "$4.00", "80.0")]
    assert item.has_figures and item.window == "today" and item.rule == "daily"
    assert item.rule_description == "the team's daily cap"
    assert item.chart is not None and item.chart.title == "Cost per day" and len(item.chart.bars) == len(BARS)
    # A daily threshold and daily bars measure the same thing: the chart draws the threshold line.
    assert item.chart.reference == Decimal(4) and (item.chart.first_label, item.chart.last_label) == ("11-18", "11-27")


def test_the_chart_line_only_where_a_bar_measures_the_threshold_and_no_chart_once_resolved() -> None:
    monthly = Rule(name="m", kind="budget", recipients="g", period="month")
    resolved = _notification(_finding(monthly), kind="resolved", severity="resolved")
    view = digest_view([_notification(_finding(monthly)), resolved], rules_file="r.json", generated_at=NOW)
    firing, gone = view.items
    assert firing.chart is not None and firing.chart.reference is None
    assert gone.chart is None and gone.badge == "RESOLVED"


def test_an_alert_without_current_figures_shows_its_period_and_placeholders() -> None:
    (item,) = digest_view(
        [_notification(None, period_key="2026-11-26", subject="no colon here")], rules_file="r.json", generated_at=NOW
    ).items
    assert not item.has_figures and item.window == "2026-11-26" and (item.value, item.threshold) == ("-", "-")
    assert (item.scope, item.summary, item.kind_label) == ("no colon here", "", "alert")
    assert item.chart is None and item.contributors == () and item.sentences == ()


def test_the_view_holds_plain_values_only() -> None:
    """What reaches email/ is strings, numbers and views: no Finding, Rule or Notification."""
    daily = Rule(name="daily", kind="threshold", recipients="g")
    finding = _finding(daily, contributors=(Contributor("user", "bob", Decimal(4), Decimal(80)),))
    view = digest_view([_notification(finding), _notification(None)], rules_file="r.json", generated_at=NOW)
    seen: set[str] = set()

    def walk(value: object) -> None:
        seen.add(type(value).__module__)
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                walk(getattr(value, field.name))
        elif isinstance(value, tuple):
            for member in value:
                walk(member)

    walk(view)
    assert seen <= {"shared.email.views", "builtins", "decimal"}


def test_a_rule_and_level_past_the_cap_shows_its_largest_and_one_line_for_the_rest() -> None:
    each_user = Rule(name="per-user", kind="threshold", recipients="g", scope=Scope("user"))
    warnings = [
        _notification(_finding(each_user, member=f"u{index:02d}", value=Decimal(index)), rule_name="per-user",
                      key=f"per-user|u{index:02d}", subject=f"user u{index:02d}: ${index}.00 today")
        for index in range(1, 26)
    ]  # fmt: skip
    critical = _notification(None, rule_name="other", severity="critical", level="critical", subject="b: paged")
    view = digest_view([*warnings, critical], rules_file="r.json", generated_at=NOW)
    assert view.counts == "1 critical, 25 warning" and view.subject == "[CRITICAL] b: paged (+25 more)"
    shown = [item.subject for item in view.items]
    assert len(view.items) == 1 + TOP_PER_RULE_AND_LEVEL
    assert shown[1:] == [f"user u{index:02d}: ${index}.00 today" for index in range(25, 5, -1)]  # the largest first
    assert [item.more for item in view.items if item.more] == [
        "and 5 more users at warning under per-user: $15.00 together"  # 1 + 2 + 3 + 4 + 5
    ]
    assert view.items[-1].more  # right after the last one shown


def test_the_rest_line_totals_only_what_adds_up() -> None:
    each_sub = Rule(name="recon", kind="reconciliation", recipients="g")
    percents = [_notification(_finding(each_sub, value=Decimal(index), unit="%"), rule_name="recon")
                for index in range(22)]  # fmt: skip
    resolved = [_notification(None, rule_name="gone", kind="resolved", severity="resolved", level="")
                for _ in range(23)]  # fmt: skip
    lines = [item.more for item in digest_view([*percents, *resolved], rules_file="r", generated_at=NOW).items]
    assert [line for line in lines if line] == ["and 2 more alerts at warning under recon",
                                                "and 3 more alerts resolved under gone"]  # fmt: skip


def test_each_notification_shows_its_ref_which_names_key_period_and_level_reached() -> None:
    from shared.alerts.findings import notification_ref

    fired = notification_ref("budget|all", "2026-11-27", "80", "fired")
    assert fired == notification_ref("budget|all", "2026-11-27", "80", "escalated")  # the level reached, however
    others = {
        notification_ref("budget|all", "2026-11-27", "100", "escalated"),
        notification_ref("budget|all", "2026-11-28", "80", "fired"),
        notification_ref("budget|user:a", "2026-11-27", "80", "fired"),
        notification_ref("budget|all", "2026-11-27", "80", "resolved"),
    }
    assert fired not in others and len(others) == 4
    message = sample_message()
    page, text = inline_html(message)
    refs = [line.split()[-1] for line in text.splitlines() if line.startswith("  Ref:  ")]
    assert len(refs) == len(set(refs)) == 4  # the sample digest's four alerts
    assert all(len(ref) == 16 and f"ref <code>{ref}</code>" in page for ref in refs)
