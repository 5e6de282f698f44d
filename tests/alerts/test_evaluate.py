"""Every rule kind on hand-built alert data, and noise control (dedup, escalation, resolution)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.alerts.data import AlertData, Ranges, traffic_frame, usage_frame
from shared.alerts.evaluate import EVALUATORS, Clock, PeriodSpan, evaluate
from shared.alerts.findings import Finding
from shared.alerts.rules import KINDS, RuleSet, load_rules, parse_rules
from shared.alerts.state import AlertRecord
from shared.alerts.transitions import transition
from shared.costs.outputs import SubscriptionSpend
from shared.errors import InputFileError
from shared.money import to_micros
from tests import ROOT

NOW = datetime(2026, 11, 27, 10, 20, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def rules(*rules: dict[str, Any]) -> RuleSet:
    named = [{"name": f"r{i}", **rule} for i, rule in enumerate(rules)]
    return parse_rules(
        json.dumps({"currency": "USD", "recipient_groups": {"p": ["p@example.com"]}, "rules": named}), source="t.json"
    )


def row(
    at: datetime, cost: str = "0", tokens: int = 1000, *, sub: str = "team-a", user: str = "alice",
    model: str = "gpt-4o", requests: int = 1, unpriced: bool = False, deployment: str | None = None,
    estimated_tokens: int = 0, estimated_cost: str = "0",
) -> list[Any]:  # fmt: skip
    micros = to_micros(Decimal(cost))
    currency = "" if unpriced else "USD"
    return [at, model, deployment or model, sub, user, "inference-api", currency, unpriced, requests, tokens, micros,
            estimated_tokens, to_micros(Decimal(estimated_cost))]


def data(usage: list[list[Any]], traffic: list[list[Any]] | None = None) -> AlertData:
    ranges = Ranges(NOW - 30 * D, NOW - 30 * D, NOW + H, NOW - D)
    return AlertData(ranges, usage_frame(usage), traffic_frame(traffic or []))


def run(ruleset: RuleSet, alert_data: AlertData, fresh: list[SubscriptionSpend] | None = None) -> dict[str, Finding]:
    return {f.key: f for f in evaluate(ruleset, alert_data, Clock(NOW, 60), fresh or [])}


def test_threshold_each_member_with_levels_and_contributors() -> None:
    ruleset = rules({"kind": "threshold", "metric": "cost", "window": "day", "scope": "each:user",
                     "warning": 10, "critical": 20})  # fmt: skip
    today = NOW.replace(hour=9)
    found = run(ruleset, data([
        row(today, "12", user="alice"), row(today, "9", user="alice", model="gpt-4o-mini"),
        row(today, "10", user="bob"), row(today, "9.99", user="carol"),
        row(today - D, "500", user="carol"),  # yesterday: not today's spend
    ]))  # fmt: skip
    assert (found["r0|alice"].level, found["r0|alice"].value) == ("critical", Decimal(21))
    assert found["r0|bob"].level == "warning"
    assert found["r0|carol"].level == "" and not found["r0|carol"].firing
    assert found["r0|alice"].summary == "$21.00 today, over the critical level $20.00"
    assert found["r0|alice"].period_key == "2026-11-27"
    models = [(c.name, c.value) for c in found["r0|alice"].contributors if c.dimension == "model"]
    assert models == [("gpt-4o", Decimal(12)), ("gpt-4o-mini", Decimal(9))]
    assert len(found["r0|alice"].chart) == 14 and found["r0|alice"].chart[-1].value == Decimal(21)


def test_threshold_tokens_and_requests_by_hour_and_month() -> None:
    ruleset = rules(
        {"kind": "threshold", "metric": "tokens", "window": "hour", "scope": "model:gpt-4o", "warning": 1500},
        {"kind": "threshold", "metric": "requests", "window": "month", "scope": "subscription:team-a", "critical": 5},
    )
    found = run(ruleset, data([
        row(NOW.replace(minute=5), tokens=1000), row(NOW.replace(minute=15), tokens=600),
        row(NOW - H, tokens=9999, requests=2), row(NOW - 3 * D, requests=3),
        row(NOW - 30 * D, requests=100),  # last month
    ]))  # fmt: skip
    assert (found["r0|"].value, found["r0|"].level, found["r0|"].period_key) == (1600, "warning", "2026-11-27T10")
    assert found["r0|"].scope_label == "model gpt-4o" and len(found["r0|"].chart) == 24
    assert (found["r1|"].value, found["r1|"].level, found["r1|"].period_key) == (7, "critical", "2026-11")


def test_budget_percent_levels_and_fresh_spend_from_the_costs_run() -> None:
    ruleset = rules({"kind": "budget", "scope": "each:subscription", "period": "day", "amount": 400, "forecast": False})
    found = run(
        ruleset, data([row(NOW.replace(hour=1), "100", sub="team-a"), row(NOW.replace(hour=1), "330", sub="team-b")])
    )
    assert (found["r0|team-a"].level, found["r0|team-a"].severity) == ("", "ok")
    assert (found["r0|team-b"].level, found["r0|team-b"].severity) == ("80%", "warning")
    # The costs run knows more than the (lagging) summaries: its figure wins.
    fresh = [SubscriptionSpend(subscription_id="team-a", currency="USD", day_start=NOW.replace(hour=0, minute=0),
                               month_start=NOW.replace(day=1, hour=0, minute=0), day_cost=Decimal("412.5"),
                               month_cost=Decimal("900"), day_tokens=1, month_tokens=1, day_unpriced_tokens=0,
                               month_unpriced_tokens=0)]  # fmt: skip
    found = run(ruleset, data([row(NOW.replace(hour=1), "100", sub="team-a")]), fresh)
    assert (found["r0|team-a"].level, found["r0|team-a"].severity) == ("100%", "critical")
    assert found["r0|team-a"].summary == "$412.50 today, 103% of $400.00 budget"


def test_budget_forecast_is_its_own_level() -> None:
    # 26 days and 10 hours into November: $360 so far projects to ~$408 over 30 days.
    ruleset = rules({"kind": "budget", "scope": "all", "period": "month", "amount": 400})
    found = run(ruleset, data([row(NOW - 3 * D, "360")]))["r0|"]
    assert (found.level, found.severity) == ("forecast", "warning")
    assert "projected to exceed on 2026-11-30" in found.summary and "ends at $408" in found.detail
    early = rules(
        {"kind": "budget", "scope": "all", "period": "month", "amount": 400, "forecast_min_elapsed_percent": 95}
    )
    assert run(early, data([row(NOW - 3 * D, "360")]))["r0|"].level == "80%"


def test_spike_against_the_median_of_the_same_hour_with_minimum_volume() -> None:
    ruleset = rules({"kind": "spike", "metric": "cost", "window": "hour", "scope": "each:user", "baseline_days": 7,
                     "factor_warning": 3, "factor_critical": 10, "min_value": 5})  # fmt: skip
    latest = NOW.replace(minute=0) - H  # 09:00-10:00
    usage = []
    for day in range(1, 8):
        usage += [row(latest - day * D, "2", user="alice"), row(latest - day * D, "0.1", user="quiet")]
        usage.append(row(latest - day * D + 2 * H, "500", user="alice"))  # another hour: not the baseline
    usage += [row(latest + timedelta(minutes=30), "25", user="alice"), row(latest, "4", user="quiet")]
    usage.append(row(latest, "50", user="newcomer"))  # no history: not a spike
    found = run(ruleset, data(usage))
    assert (found["r0|alice"].level, found["r0|alice"].value) == ("critical", Decimal(25))
    assert "12.5× the 7-day median of $2.00" in found["r0|alice"].summary
    assert found["r0|quiet"].level == ""  # 40× but under the minimum volume
    assert "r0|newcomer" not in found


def test_unpriced_tokens_per_model() -> None:
    ruleset = rules({"kind": "unpriced", "scope": "each:model", "window": "day"})
    found = run(ruleset, data([row(NOW, tokens=55, model="mystery-model", unpriced=True), row(NOW, "1")]))
    assert set(found) == {"r0|mystery-model"}
    assert (found["r0|mystery-model"].level, found["r0|mystery-model"].value) == ("warning", Decimal(55))


def run_row(first: datetime, last: datetime, tokens: int, *, sub: str = "team-a", user: str = "bot",
            deployment: str = "gpt-4o", ok: int = 5, unseen: int = 0, streamed_tokens: int = 0,
            streamed_ok: int = 0, uncertain: int = 0) -> list[Any]:  # fmt: skip
    """A traffic run's ground truth: `tokens` from plain calls, `streamed_tokens` reported by streams;
    `unseen` streamed calls whose usage the client never saw; `uncertain` failed or retried plain calls."""
    return ["run-" + first.isoformat(), sub, user, deployment, ok + streamed_ok, unseen, tokens + streamed_tokens,
            tokens, uncertain, streamed_ok + unseen, streamed_tokens, unseen, first, last]


def test_no_metrics_while_synthetic_traffic_ran() -> None:
    ruleset = rules({"kind": "no_metrics", "windows": 2, "grace_minutes": 15})
    # Ended windows (grace 15 min at 10:20): 08:00-09:00 and 09:00-10:00.
    traffic = [run_row(NOW.replace(hour=8, minute=10), NOW.replace(hour=8, minute=11), 100),
               run_row(NOW.replace(hour=9, minute=10), NOW.replace(hour=9, minute=11), 100)]  # fmt: skip
    lost = run(ruleset, data([row(NOW.replace(hour=7), tokens=50)], traffic))["r0|"]
    assert (lost.level, lost.severity) == ("critical", "critical") and "10 calls" in lost.summary
    fine = run(ruleset, data([row(NOW.replace(hour=9), tokens=50)], traffic))["r0|"]
    assert fine.level == ""
    quiet = run(ruleset, data([], traffic[:1]))["r0|"]  # no traffic in one window: no conclusion
    assert quiet.level == ""


def test_reconciliation_compares_plain_calls_to_the_token_and_streams_with_their_tolerance() -> None:
    ruleset = rules({"kind": "reconciliation", "windows": 2, "grace_minutes": 15, "stream_tolerance_percent": 5,
                     "min_tokens": 100})  # fmt: skip
    at, hour = NOW.replace(hour=8, minute=30), NOW.replace(hour=8)
    traffic = [
        run_row(at, at + timedelta(minutes=1), 10_000, sub="team-a", streamed_tokens=4_000, streamed_ok=2),
        run_row(at, at + timedelta(minutes=1), 10_000, sub="team-b"),
        run_row(at, at + timedelta(minutes=1), 10_000, sub="team-c", unseen=1),  # a stream's usage unseen
        run_row(at, at + timedelta(minutes=1), 10_000, sub="team-e", streamed_tokens=4_000, streamed_ok=2),
        run_row(NOW.replace(hour=7, minute=59), NOW.replace(hour=8, minute=1), 500, sub="team-d"),  # straddles
    ]
    usage = [
        # plain calls exact; APIM's estimate of the streams 2.5% high: within the stream tolerance
        row(hour, tokens=14_100, sub="team-a", user="bot", estimated_tokens=4_100),
        row(hour, tokens=5_000, sub="team-b", user="bot"),  # half lost
        # the unseen stream's estimate is not compared; the plain calls still are, to the token
        row(hour, tokens=10_777, sub="team-c", user="bot", estimated_tokens=777),
        row(hour, tokens=14_001, sub="team-e", user="bot", estimated_tokens=4_000),  # one token too many
        row(hour, tokens=99_999, sub="team-a", user="a-human"),  # not synthetic: ignored
    ]
    found = run(ruleset, data(usage, traffic))
    assert set(found) == {"r0|team-a", "r0|team-b", "r0|team-c", "r0|team-e"}
    assert found["r0|team-a"].level == "" and found["r0|team-c"].level == ""
    assert "streamed calls (APIM estimates): metered 4,100 tokens vs 4,000 tokens sent, 100 tokens more (2.50%" in (
        found["r0|team-a"].summary)  # fmt: skip
    assert "without their streams" in found["r0|team-c"].detail
    assert (found["r0|team-b"].level, found["r0|team-b"].value) == ("critical", Decimal(50))
    assert "plain calls: metered 5,000 tokens vs 10,000 tokens sent, 5,000 tokens fewer (50.00%" in (
        found["r0|team-b"].summary)  # fmt: skip
    # A plain call is metered from its usage: a single token off is a finding.
    assert found["r0|team-e"].level == "critical"
    assert "metered 10,001 tokens vs 10,000 tokens sent, 1 tokens more (0.01%" in found["r0|team-e"].summary


def test_reconciliation_leaves_out_what_has_no_exact_ground_truth() -> None:
    # min_tokens 0: a subscription that only streamed has nothing plain to compare (no 0/0).
    ruleset = rules({"kind": "reconciliation", "windows": 2, "grace_minutes": 15, "min_tokens": 0})
    at, hour = NOW.replace(hour=8, minute=30), NOW.replace(hour=8)
    traffic = [
        run_row(at, at + timedelta(minutes=1), 0, sub="team-s", ok=0, streamed_tokens=3_000, streamed_ok=3),
        # A plain call failed or was retried: the gateway may have metered what the client never
        # counted, so the plain part of this pair is not compared (it would page to the token).
        run_row(at, at + timedelta(minutes=1), 10_000, sub="team-r", uncertain=1),
        run_row(at, at + timedelta(minutes=1), 2_000, sub="team-r", user="bot-2"),
    ]
    usage = [
        row(hour, tokens=3_000, sub="team-s", user="bot", estimated_tokens=3_000),
        row(hour, tokens=10_500, sub="team-r", user="bot"),
        row(hour, tokens=2_000, sub="team-r", user="bot-2"),
    ]
    found = run(ruleset, data(usage, traffic))
    assert found["r0|team-s"].level == "" and "plain calls" not in found["r0|team-s"].summary
    team_r = found["r0|team-r"]
    assert team_r.level == "" and "metered 2,000 tokens vs 2,000 tokens sent" in team_r.summary
    assert "1 without their plain calls: failed or retried calls" in team_r.detail


def test_estimated_share_is_in_cost_and_token_findings() -> None:
    ruleset = rules({"kind": "threshold", "metric": "cost", "window": "day", "scope": "all", "warning": 1},
                    {"kind": "threshold", "metric": "tokens", "window": "day", "scope": "all", "warning": 1},
                    {"kind": "threshold", "metric": "requests", "window": "day", "scope": "all", "warning": 1})
    today = NOW.replace(hour=9)
    found = run(ruleset, data([row(today, "3", tokens=1000, estimated_tokens=250, estimated_cost="1"),
                               row(today, "1", tokens=1000)]))  # fmt: skip
    assert found["r0|"].estimated_percent == Decimal("25.0")  # $1 of $4
    assert found["r1|"].estimated_percent == Decimal("12.5")  # 250 of 2,000 tokens
    assert found["r2|"].estimated_percent is None
    assert found["r0|"].estimated_note.startswith("25.0% of this rests on estimated tokens")


# -- periods and kinds -------------------------------------------------------------------------------


def test_periods_are_built_once_with_their_bounds_key_and_wording() -> None:
    clock = Clock(NOW, 60)
    assert clock.period("hour") == PeriodSpan(
        NOW.replace(minute=0), NOW.replace(hour=11, minute=0), "2026-11-27T10", "this hour (10:00 UTC)", "this hour"
    )
    assert clock.period("day") == PeriodSpan(
        NOW.replace(hour=0, minute=0), NOW.replace(day=28, hour=0, minute=0), "2026-11-27", "today (2026-11-27 UTC)",
        "today",
    )  # fmt: skip
    assert clock.period("month") == PeriodSpan(
        NOW.replace(day=1, hour=0, minute=0), NOW.replace(month=12, day=1, hour=0, minute=0), "2026-11",
        "this month (November 2026, to date)", "this month",
    )  # fmt: skip
    new_year = Clock(datetime(2026, 12, 31, 23, 59, tzinfo=UTC), 60).period("month")
    assert (new_year.end, new_year.length) == (datetime(2027, 1, 1, tzinfo=UTC), 31 * D)


def test_a_finding_carries_its_span_key_and_label_unchanged() -> None:
    ruleset = rules(
        {"kind": "threshold", "metric": "tokens", "window": "month", "scope": "all", "warning": 1},
        {"kind": "spike", "metric": "tokens", "window": "hour", "scope": "all", "factor_warning": 2, "min_value": 1},
        {"kind": "no_metrics", "windows": 2, "grace_minutes": 15},
    )
    latest = NOW.replace(minute=0) - H
    found = run(ruleset, data([*(row(latest - days * D) for days in range(1, 8)), row(latest, tokens=5000)]))
    month = Clock(NOW, 60).period("month")
    assert (found["r0|"].period_key, found["r0|"].window_label) == (month.key, month.label)
    assert "tokens this month" in found["r0|"].summary
    assert (found["r1|"].period_key, found["r1|"].window_label) == ("2026-11-27T09", "the hour 09:00–10:00 UTC")
    assert "in hour 09:00–10:00 UTC, 5.0× the 7-day median" in found["r1|"].summary
    assert (found["r2|"].period_key, found["r2|"].window_label) == ("2026-11-27", "2026-11-27 08:00–10:00 UTC")


def test_every_rule_kind_has_its_own_evaluator() -> None:
    assert set(EVALUATORS) == set(KINDS)
    sample = load_rules(ROOT / "shared" / "alerts" / "alerts.sample.json")
    assert {finding.rule.kind for finding in evaluate(sample, data([row(NOW)]), Clock(NOW, 60))} >= {
        "threshold", "budget", "no_metrics"
    }  # fmt: skip


def test_a_rule_of_unknown_kind_is_refused_not_evaluated_as_another_kind() -> None:
    ruleset = rules({"kind": "reconciliation", "windows": 2, "grace_minutes": 15, "min_tokens": 0},
                    {"kind": "unpriced", "scope": "each:model"})  # fmt: skip
    at = NOW.replace(hour=8, minute=30)
    reconciled = data([row(NOW.replace(hour=8), tokens=5, sub="team-b", user="bot")],
                      [run_row(at, at + timedelta(minutes=1), 10, sub="team-b")])  # fmt: skip
    assert run(ruleset, reconciled)["r0|team-b"].level == "critical"  # what the old fallback would have made
    alarm = replace(ruleset, rules=(replace(ruleset.rules[0], kind="alarm"), ruleset.rules[1]))  # type: ignore[arg-type]
    with pytest.raises(InputFileError) as refused:
        run(alarm, reconciled)
    assert "t.json: rules[0].kind: rule 'r0': 'alarm' cannot be evaluated; expected one" in str(refused.value)
    assert "reconciliation" in str(refused.value)


# -- noise control -----------------------------------------------------------------------------------


def finding(level: str, rank: int, period: str = "2026-11-27", severity: str = "warning") -> Finding:
    ruleset = rules({"kind": "budget", "scope": "all", "period": "day", "amount": 10})
    return Finding(ruleset.rules[0], "", "all traffic", period, "today", level, rank, severity,  # type: ignore[arg-type]
                   Decimal(9), Decimal(10), "USD", f"{level} figure")  # fmt: skip


def deliver(record: AlertRecord) -> AlertRecord:
    return record.sent(NOW)


def test_once_per_period_and_level_escalation_and_resolution() -> None:
    record = AlertRecord("r0|", "r0", "")
    fired = transition(record, finding("50%", 5000), NOW)
    assert (fired.pending_kind, fired.pending_level) == ("fired", "50%")
    told = deliver(fired)
    assert transition(told, finding("50%", 5000), NOW) == told  # same period and level: nothing
    escalated = transition(told, finding("100%", 10000, severity="critical"), NOW)
    assert (escalated.pending_kind, escalated.pending_level, escalated.pending_severity) == (
        "escalated", "100%", "critical"
    )  # fmt: skip
    told = deliver(escalated)
    assert transition(told, finding("80%", 8000), NOW) == told  # lower level later: nothing
    next_day = transition(told, finding("50%", 5000, period="2026-11-28"), NOW)
    assert (next_day.pending_kind, next_day.pending_period) == ("fired", "2026-11-28")
    cleared = transition(told, finding("", 0, severity="ok"), NOW)
    assert (cleared.pending_kind, cleared.pending_severity) == ("resolved", "resolved")
    quiet = deliver(cleared)
    assert not quiet.open and transition(quiet, finding("", 0, severity="ok"), NOW) == quiet
    assert transition(quiet, None, NOW) == quiet


def test_undelivered_fire_that_clears_is_dropped_and_pending_is_kept_until_sent() -> None:
    pending = transition(AlertRecord("r0|", "r0", ""), finding("50%", 5000), NOW)
    assert transition(pending, finding("50%", 5000), NOW) == pending  # still pending: retried as is
    upgraded = transition(pending, finding("100%", 10000, severity="critical"), NOW)
    assert (upgraded.pending_kind, upgraded.pending_level) == ("fired", "100%")
    dropped = transition(pending, finding("", 0, severity="ok"), NOW)
    assert dropped.pending_kind == "" and not dropped.open


def test_a_resolve_made_obsolete_by_a_new_fire_is_dropped_unless_its_email_may_be_out() -> None:
    from dataclasses import replace

    told = deliver(transition(AlertRecord("r0|", "r0", ""), finding("50%", 5000), NOW))
    resolving = transition(told, finding("", 0, severity="ok"), NOW)
    assert resolving.pending_kind == "resolved"
    # Never handed to a transport: it fires again at the level told, so nothing is said at all.
    assert transition(resolving, finding("50%", 5000), NOW).pending_kind == ""
    # Handed over once and the outcome not known (an SMTP connection lost after DATA): the recipients may have read
    # "resolved", so the fire is mailed again (found by the chaos soak: "resolved" twice with nothing between).
    maybe_out = replace(resolving, send_attempts=1, message_id="<a@x>")
    again = transition(maybe_out, finding("50%", 5000), NOW)
    assert (again.pending_kind, again.pending_level, again.pending_period) == ("fired", "50%", "2026-11-27")


def test_hours_nobody_called_count_in_all_traffic_but_are_no_member_of_an_each_scope() -> None:
    """A provisioned deployment's unused PTU-hours (SubscriptionId, UserId, ApiId "": shared/costs/ptu.py) are
    spend of all traffic and of their model, never an alert for "subscription " or a clash with the all-traffic
    member's key "" (each:api is checked through the same path as each:user)."""
    from shared.costs.outputs import NO_CONSUMER

    today = NOW.replace(hour=9)
    unused = [today, "gpt-4o", "ptu-prod", NO_CONSUMER, NO_CONSUMER, NO_CONSUMER, "USD", False, 0, 0,
              to_micros(Decimal(6)), 0, 0]  # fmt: skip
    ruleset = rules(
        {"kind": "threshold", "metric": "cost", "window": "day", "scope": "all", "warning": 1},
        {"kind": "threshold", "metric": "cost", "window": "day", "scope": "each:subscription", "warning": 1},
        {"kind": "threshold", "metric": "cost", "window": "day", "scope": "each:user", "warning": 1},
        {"kind": "threshold", "metric": "cost", "window": "day", "scope": "each:model", "warning": 1},
    )
    alert_data = data([unused, row(today, "2", model="gpt-4o", deployment="ptu-prod")])
    fresh = [SubscriptionSpend(sub, "USD", NOW.replace(hour=0), NOW.replace(day=1, hour=0), Decimal(cost),
                               Decimal(cost), 0, 0, 0, 0) for sub, cost in (("team-a", "2"), (NO_CONSUMER, "6"))]
    for spend in ([], fresh):  # from the summaries, and from the costs run's own totals
        found = run(ruleset, alert_data, spend)
        assert sorted(found) == ["r0|", "r1|team-a", "r2|alice", "r3|gpt-4o"]
        assert found["r0|"].value == found["r3|gpt-4o"].value == Decimal(8)
        assert (found["r1|team-a"].value, found["r2|alice"].value) == (Decimal(2), Decimal(2))
    subscriptions = [(c.name, c.value) for c in found["r0|"].contributors if c.dimension == "subscription"]
    assert subscriptions == [("(unused provisioned capacity)", Decimal(6)), ("team-a", Decimal(2))]
