"""Evaluate alert rules on the alert data: one Finding per rule x scope member (see rules.py).

Periods are UTC and to date: "hour" is the clock hour containing `now`, "day" today, "month" this
month; each is a PeriodSpan built once (bounds, key and wording together). A finding is firing when
its value reaches a level; its period key is what noise control counts notifications per. Day and
month spend of subscriptions (and of all traffic) come from the costs run that just finished when it
has them (SubscriptionSpend, shared/costs/outputs.py: its own windows may not be queryable yet in
Azure, where ingestion takes minutes), otherwise from the summaries. Each rule kind has its
evaluator in EVALUATORS; a kind without one is refused, never evaluated as another kind.
Rows of no caller (a provisioned deployment's unused PTU-hours: SubscriptionId, UserId and ApiId are
NO_CONSUMER) count in all traffic and in their model, but are no member of an "each:" subscription, user or
API scope (an alert for "subscription " would name nobody, and "" is the all-traffic member's key).
Import only inside a run: it imports pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median

import pandas as pd

from shared.alerts.data import CHART_DAYS, CHART_HOURS, AlertData
from shared.alerts.findings import ChartBar, Contributor, Finding, Severity, format_value
from shared.alerts.rules import Dimension, Kind, Period, Rule, RuleSet
from shared.billing.outputs import BillReport, DayComparison
from shared.costs.outputs import NO_CONSUMER, SubscriptionSpend
from shared.errors import FileProblem, InputFileError
from shared.meters.outputs import Allowance, BypassReport, WindowComparison
from shared.money import from_micros
from shared.windows import start_of_day, start_of_month, window_containing

COLUMN: dict[Dimension, str] = {"subscription": "SubscriptionId", "user": "UserId", "model": "Model", "api": "ApiId"}
TOP_CONTRIBUTORS = 5
NO_CONSUMER_LABEL = "(unused provisioned capacity)"  # how a contributor with no caller is named in the email
# Who to name as top contributors, by the rule's scope dimension (the scope's own is useless).
_CONTRIBUTOR_DIMENSIONS: dict[Dimension | None, tuple[Dimension, ...]] = {
    None: ("subscription", "model", "user"),
    "subscription": ("model", "user"),
    "user": ("model", "subscription"),
    "model": ("user", "subscription"),
    "api": ("model", "user"),
}


@dataclass(frozen=True)
class PeriodSpan:
    """The stretch of time a finding is about, with every way it is shown, built once: code that
    needs the bounds or the key reads them here, never back out of the label."""

    start: datetime
    end: datetime  # exclusive
    key: str  # what a notification is once per: "2026-11-27T10", "2026-11-27", "2026-11"
    label: str  # the email's window line: "today (2026-11-27 UTC)"
    phrase: str  # the same in a summary sentence: "today", "this month", "hour 09:00–10:00 UTC"

    @property
    def length(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class Clock:
    now: datetime
    window_minutes: int

    @property
    def hour_start(self) -> datetime:
        return self.now.replace(minute=0, second=0, microsecond=0)

    def period(self, period: Period) -> PeriodSpan:
        """The hour, day or month containing now."""
        if period == "hour":
            start = self.hour_start
            return PeriodSpan(start, start + timedelta(hours=1), f"{start:%Y-%m-%dT%H}",
                              f"this hour ({start:%H:00} UTC)", "this hour")  # fmt: skip
        if period == "day":
            start = start_of_day(self.now)
            return PeriodSpan(start, start + timedelta(days=1), f"{start:%Y-%m-%d}",
                              f"today ({start:%Y-%m-%d} UTC)", "today")  # fmt: skip
        start = start_of_month(self.now)
        end = (start + timedelta(days=32)).replace(day=1)
        return PeriodSpan(start, end, f"{start:%Y-%m}", f"this month ({start:%B %Y}, to date)", "this month")


@dataclass(frozen=True)
class Verdict:
    """How a rule judged a value: the level reached ("" when none, so not firing), its rank (higher
    is worse) and severity, and the threshold the value is shown against."""

    level: str = ""
    rank: int = 0
    severity: Severity = "ok"
    threshold: Decimal | None = None


@dataclass(frozen=True)
class Inputs:
    """What every rule kind is evaluated on."""

    currency: str  # the rules file's
    data: AlertData
    clock: Clock
    fresh: Sequence[SubscriptionSpend]  # the costs run's day/month spend; empty without one
    bypass: BypassReport | None = None  # the bypass check after the costs run; None without one
    bill: BillReport | None = None  # the bill check after it; None without one


Evaluator = Callable[[Rule, Inputs], list[Finding]]


def evaluate(
    rules: RuleSet,
    data: AlertData,
    clock: Clock,
    fresh: Sequence[SubscriptionSpend] = (),
    bypass: BypassReport | None = None,
    bill: BillReport | None = None,
) -> list[Finding]:
    """Every rule's findings. Raises InputFileError, before evaluating any, for a rule whose kind
    has no evaluator (parse_rules refuses unknown kinds: only a Rule built in code gets here)."""
    unknown = [(index, rule) for index, rule in enumerate(rules.rules) if rule.kind not in EVALUATORS]
    if unknown:
        expected = ", ".join(EVALUATORS)
        raise InputFileError(
            rules.source,
            "alert rules",
            [
                FileProblem(rules.source, None, f"rules[{index}].kind",
                            f"rule {rule.name!r}: {rule.kind!r} cannot be evaluated; expected one of {expected}")
                for index, rule in unknown
            ],
        )
    inputs = Inputs(rules.currency, data, clock, fresh, bypass, bill)
    findings: list[Finding] = []
    for rule in rules.rules:
        findings.extend(EVALUATORS[rule.kind](rule, inputs))
    return findings


# -- measuring -------------------------------------------------------------------------------------


def _unit(rule: Rule, currency: str) -> str:
    return currency if rule.metric == "cost" else rule.metric


def _measure(frame: pd.DataFrame, metric: str, currency: str, *, estimated: bool = False) -> pd.Series:
    """The metric of each row, as a number of its unit (cost: micro-units, other currencies are 0);
    with `estimated`, only the part resting on tokens APIM estimated (cost and tokens only)."""
    if metric == "cost":
        priced = (frame["Currency"] == currency) & ~frame["Unpriced"]
        return frame["EstimatedCostMicros" if estimated else "CostMicros"].where(priced, 0)
    if metric == "tokens":
        return frame["EstimatedTokens" if estimated else "TotalTokens"]
    if estimated:
        raise ValueError(f"no estimated part of {metric}")
    return frame["Requests"]


def _as_unit(raw: int | float, metric: str) -> Decimal:
    return from_micros(int(raw)) if metric == "cost" else Decimal(int(raw))


def _between(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    return frame[(frame["Bucket"] >= pd.Timestamp(start)) & (frame["Bucket"] < pd.Timestamp(end))]


def _in_scope(frame: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    if rule.scope.dimension is None or rule.scope.value is None:
        return frame
    return frame[frame[COLUMN[rule.scope.dimension]] == rule.scope.value]


def _members(frame: pd.DataFrame, rule: Rule, currency: str, extra: Iterable[str] = ()) -> dict[str, Decimal]:
    """Scope member -> value over the frame ("" for all traffic or a fixed scope)."""
    scoped = _in_scope(frame, rule)
    values = _measure(scoped, rule.metric, currency)
    if not rule.scope.each:
        return {"": _as_unit(values.sum(), rule.metric)}
    assert rule.scope.dimension is not None
    sums = values.groupby(scoped[COLUMN[rule.scope.dimension]]).sum()
    # As plain lists: iterating a Series of a million members item by item is most of a large run.
    pairs = zip(sums.index.tolist(), sums.tolist(), strict=True)
    members = {str(name): _as_unit(total, rule.metric) for name, total in pairs if name != NO_CONSUMER}
    for name in extra:
        members.setdefault(name, Decimal(0))
    return members


def _scope_label(rule: Rule, member: str) -> str:
    if rule.scope.dimension is None:
        return "all traffic"
    return f"{rule.scope.dimension} {member or rule.scope.value}"


def _fresh_values(rule: Rule, currency: str, fresh: Sequence[SubscriptionSpend]) -> dict[str, Decimal] | None:
    """Values from the costs run, for subscription or all-traffic cost/tokens by day or month."""
    if not fresh or rule.period == "hour" or rule.metric == "requests":
        return None
    if rule.scope.dimension not in (None, "subscription"):
        return None
    per_subscription: dict[str, Decimal] = {}
    for spend in fresh:
        if rule.metric == "cost":
            if spend.currency != currency:
                continue
            value = spend.day_cost if rule.period == "day" else spend.month_cost
        else:
            value = Decimal(spend.day_tokens if rule.period == "day" else spend.month_tokens)
        per_subscription[spend.subscription_id] = per_subscription.get(spend.subscription_id, Decimal(0)) + value
    if rule.scope.dimension is None:
        return {"": sum(per_subscription.values(), Decimal(0))}
    if rule.scope.value is not None:
        return {"": per_subscription[rule.scope.value]} if rule.scope.value in per_subscription else None
    return {name: value for name, value in per_subscription.items() if name != NO_CONSUMER}


# -- details shown in the email --------------------------------------------------------------------


def _with_details(
    findings: list[Finding], rows: pd.DataFrame, span: PeriodSpan, currency: str, clock: Clock
) -> list[Finding]:
    """The findings of one rule, the firing ones with the email's details: top contributors and estimated
    share over the span, and the chart, from `rows` (the usage the rule reads, any members). Computed for
    every firing member at once: a rule with thousands of members firing groups the rows once, never per member."""
    firing = {finding.member for finding in findings if finding.firing}
    if not firing:
        return findings
    rule = findings[0].rule
    scoped = _in_scope(rows, rule)
    if rule.scope.each:
        assert rule.scope.dimension is not None
        scoped = scoped[scoped[COLUMN[rule.scope.dimension]].isin(firing)]
        members = scoped[COLUMN[rule.scope.dimension]].rename("member")
    else:
        members = pd.Series("", index=scoped.index, name="member")  # the one member: the rule's scope
    values = _measure(scoped, rule.metric, currency)
    in_period = (scoped["Bucket"] >= pd.Timestamp(span.start)) & (scoped["Bucket"] < pd.Timestamp(span.end))
    totals = values[in_period].groupby(members[in_period]).sum()
    contributors = _contributors(rule, scoped[in_period], values[in_period], members[in_period], totals)
    charts, title = _charts(rule, scoped, values, members, firing, currency, clock)
    estimated = _estimated_percents(rule, scoped[in_period], members[in_period], totals, currency)
    return [
        replace(finding, contributors=tuple(contributors.get(finding.member, ())), chart=charts[finding.member],
                chart_title=title, estimated_percent=estimated.get(finding.member))
        if finding.firing else finding
        for finding in findings
    ]  # fmt: skip


def _contributors(
    rule: Rule, rows: pd.DataFrame, values: pd.Series, members: pd.Series, totals: pd.Series
) -> dict[str, list[Contributor]]:
    """Per member, the top contributors by each dimension the rule's scope does not fix, the largest first
    (equal ones by name), with their share of the member's total; none for a member whose total is 0."""
    found: dict[str, list[Contributor]] = {}
    for dimension in _CONTRIBUTOR_DIMENSIONS[rule.scope.dimension]:
        sums = values.groupby([members, rows[COLUMN[dimension]].rename("name")]).sum()  # by member, then name
        ranked = sums[sums > 0].rename("value").reset_index()
        ranked = ranked.sort_values(["member", "value"], ascending=[True, False], kind="stable")
        for member, name, value in ranked.groupby("member", sort=False).head(TOP_CONTRIBUTORS).itertuples(index=False):
            total = totals[member]
            if not total:
                continue
            share = (Decimal(int(value)) * 100 / Decimal(int(total))).quantize(Decimal("0.1"))
            shown = NO_CONSUMER_LABEL if name == NO_CONSUMER else str(name)
            found.setdefault(member, []).append(Contributor(dimension, shown, _as_unit(value, rule.metric), share))
    return found


def _charts(
    rule: Rule,
    rows: pd.DataFrame,
    values: pd.Series,
    members: pd.Series,
    wanted: Iterable[str],
    currency: str,
    clock: Clock,
) -> tuple[dict[str, tuple[ChartBar, ...]], str]:
    """Each wanted member's chart bars (every bar, 0 where there was no usage), and the charts' title."""
    unit = _unit(rule, currency)
    # A spike is about the latest *ended* hour or day: that is the chart's last (highlighted) bar.
    ended = 1 if rule.kind == "spike" else 0
    if rule.period == "hour":
        first = clock.hour_start - timedelta(hours=CHART_HOURS - 1 + ended)
        keys = [first + timedelta(hours=i) for i in range(CHART_HOURS)]
        floor = "h"
        title = f"{rule.metric} per hour, last {CHART_HOURS} hours ({unit}, UTC)"
        fmt = "%H:00"
    else:
        first = start_of_day(clock.now) - timedelta(days=CHART_DAYS - 1 + ended)
        keys = [first + timedelta(days=i) for i in range(CHART_DAYS)]
        floor = "D"
        title = f"{rule.metric} per day, last {CHART_DAYS} days ({unit}, UTC)"
        fmt = "%m-%d"
    recent = rows["Bucket"] >= pd.Timestamp(first)  # a bar's rows all start at or after its start
    sums = values[recent].groupby([members[recent], rows.loc[recent, "Bucket"].dt.floor(floor)]).sum().to_dict()
    labelled = [(key.strftime(fmt), pd.Timestamp(key)) for key in keys]
    zero = _as_unit(0, rule.metric)
    charts = {
        member: tuple(
            ChartBar(label, _as_unit(sums[(member, at)], rule.metric) if (member, at) in sums else zero)
            for label, at in labelled
        )
        for member in wanted
    }
    return charts, title


def _estimated_percents(
    rule: Rule, rows: pd.DataFrame, members: pd.Series, totals: pd.Series, currency: str
) -> dict[str, Decimal]:
    """Per member, how much of its cost (or tokens) rests on tokens APIM estimated, in percent; a member
    whose total is 0 (and any rule of requests) has none."""
    if rule.metric not in ("cost", "tokens"):
        return {}
    parts = _measure(rows, rule.metric, currency, estimated=True).groupby(members).sum()
    return {
        str(member): (Decimal(int(parts[member])) * 100 / Decimal(int(whole))).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_EVEN
        )
        for member, whole in totals.items()
        if whole
    }


def _finding(
    rule: Rule,
    member: str,
    span: PeriodSpan,
    verdict: Verdict,
    *,
    value: Decimal,
    unit: str,
    summary: str,
    clock: Clock,
    detail: str = "",
    rows: pd.DataFrame | None = None,
    currency: str = "",
    scope_label: str = "",
) -> Finding:
    """The finding of one scope member; with `rows` (the member's usage), a firing one gets the
    email's details (_with_details; a rule of many members adds them to all its findings at once).
    `scope_label` defaults to the rule's scope and the member ("subscription team-a")."""
    finding = Finding(
        rule=rule, member=member, scope_label=scope_label or _scope_label(rule, member), period_key=span.key,
        window_label=span.label, level=verdict.level, rank=verdict.rank, severity=verdict.severity, value=value,
        threshold=verdict.threshold, unit=unit, summary=summary, detail=detail,
    )  # fmt: skip
    if verdict.level and rows is not None:  # details only for what will be mailed
        [finding] = _with_details([finding], rows, span, currency, clock)
    return finding


def _levels(rule: Rule, value: Decimal) -> Verdict:
    if rule.critical is not None and value >= rule.critical:
        return Verdict("critical", 2, "critical", rule.critical)
    if rule.warning is not None and value >= rule.warning:
        return Verdict("warning", 1, "warning", rule.warning)
    return Verdict(threshold=rule.warning if rule.warning is not None else rule.critical)


# -- rule kinds ------------------------------------------------------------------------------------


def _period_values(rule: Rule, inputs: Inputs) -> tuple[PeriodSpan, dict[str, Decimal]]:
    """The rule's period containing now, and each scope member's value in it to date."""
    span = inputs.clock.period(rule.period)
    values = _members(_between(inputs.data.usage, span.start, span.end), rule, inputs.currency)
    from_run = _fresh_values(rule, inputs.currency, inputs.fresh)
    if from_run is not None:
        values.update(from_run)
    return span, values


def _threshold(rule: Rule, inputs: Inputs) -> list[Finding]:
    span, values = _period_values(rule, inputs)
    unit = _unit(rule, inputs.currency)
    findings = []
    for member, value in sorted(values.items()):
        verdict = _levels(rule, value)
        summary = f"{format_value(value, unit)} {span.phrase}"
        if verdict.threshold is not None:
            relation = "over" if verdict.level else "under"
            summary += f", {relation} the {verdict.level or 'warning'} level {format_value(verdict.threshold, unit)}"
        findings.append(
            _finding(rule, member, span, verdict, value=value, unit=unit, summary=summary, clock=inputs.clock)
        )
    return _with_details(findings, inputs.data.usage, span, inputs.currency, inputs.clock)


def _budget(rule: Rule, inputs: Inputs) -> list[Finding]:
    span, values = _period_values(rule, inputs)
    unit = _unit(rule, inputs.currency)
    findings = [_budget_finding(rule, member, span, spent, unit, inputs) for member, spent in sorted(values.items())]
    return _with_details(findings, inputs.data.usage, span, inputs.currency, inputs.clock)


# Exceeding is worse than any lower percentage, not as bad as having exceeded (100% = 10000).
_FORECAST_RANK = 9999


def _budget_finding(rule: Rule, member: str, span: PeriodSpan, spent: Decimal, unit: str, inputs: Inputs) -> Finding:
    assert rule.amount is not None
    percent = spent * 100 / rule.amount
    crossed = [p for p in rule.percents if percent >= p]
    verdict = Verdict(threshold=rule.amount)
    if crossed:
        severity: Severity = "critical" if crossed[-1] >= 100 else "warning"
        verdict = Verdict(f"{crossed[-1].normalize():f}%", int(crossed[-1] * 100), severity, rule.amount)
    # "today" is to date by itself; a month's spend so far is not the month's.
    when = f"{span.phrase} to date" if rule.period == "month" else span.phrase
    summary = (
        f"{format_value(spent, unit)} {when}, {percent.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)}% of "
        f"{format_value(rule.amount, unit)} budget"
    )
    detail = ""
    elapsed = (inputs.clock.now - span.start).total_seconds()
    length = span.length.total_seconds()
    forecast_due = elapsed > 0 and Decimal(elapsed) * 100 / Decimal(length) >= rule.forecast_min_elapsed_percent
    projected = spent * Decimal(length) / Decimal(elapsed) if elapsed > 0 else Decimal(0)
    if (
        rule.forecast
        and forecast_due
        and Decimal(0) < spent < rule.amount < projected
        and verdict.rank < _FORECAST_RANK
    ):
        exceed_at = span.start + timedelta(seconds=float(rule.amount / spent) * elapsed)
        when = f"on {exceed_at:%Y-%m-%d}" if rule.period == "month" else f"at {exceed_at:%H:%M} UTC"
        detail = f"at the rate so far the {rule.period} ends at {format_value(projected, unit)}"
        verdict = Verdict("forecast", _FORECAST_RANK, "warning", rule.amount)
        summary += f", projected to exceed {when}"
    return _finding(rule, member, span, verdict, value=spent, unit=unit, summary=summary, clock=inputs.clock,
                    detail=detail)  # fmt: skip


def _latest_ended(rule: Rule, clock: Clock) -> PeriodSpan:
    """The latest ended hour (or day) before now: what a spike rule judges."""
    if rule.period == "hour":
        start = clock.hour_start - timedelta(hours=1)
        hours = f"{start:%H:00}–{start + timedelta(hours=1):%H:00} UTC"
        return PeriodSpan(
            start, start + timedelta(hours=1), f"{start:%Y-%m-%dT%H}", f"the hour {hours}", f"hour {hours}"
        )
    start = start_of_day(clock.now) - timedelta(days=1)
    day = f"{start:%Y-%m-%d}"
    return PeriodSpan(start, start + timedelta(days=1), day, f"the day {day}", f"day {day}")


def _spike(rule: Rule, inputs: Inputs) -> list[Finding]:
    usage, currency = inputs.data.usage, inputs.currency
    span = _latest_ended(rule, inputs.clock)
    latest = _members(_between(usage, span.start, span.end), rule, currency)
    history = []
    for days_back in range(1, rule.baseline_days + 1):
        start = span.start - timedelta(days=days_back)
        history.append(_members(_between(usage, start, start + span.length), rule, currency))
    unit = _unit(rule, currency)
    findings = []
    for member, value in sorted(latest.items()):
        seen = [values[member] for values in history if member in values and values[member] > 0]
        if not seen:
            continue  # no history: a new scope is not a spike (threshold rules cover new big spenders)
        baseline = Decimal(median([values.get(member, Decimal(0)) for values in history]))
        factor = value / baseline if baseline > 0 else Decimal("Infinity")
        verdict = _levels(rule, factor) if value >= rule.min_value else Verdict(threshold=rule.warning)
        times = "∞" if not factor.is_finite() else f"{factor.quantize(Decimal('0.1'))}"
        summary = (
            f"{format_value(value, unit)} in {span.phrase}, {times}× the {rule.baseline_days}-day "
            f"median of {format_value(baseline, unit)}"
        )
        findings.append(
            _finding(rule, member, span, verdict, value=value, unit=unit, summary=summary, clock=inputs.clock,
                     detail=f"minimum volume {format_value(rule.min_value, unit)}")
        )  # fmt: skip
    return _with_details(findings, usage, span, currency, inputs.clock)


def _unpriced(rule: Rule, inputs: Inputs) -> list[Finding]:
    span = inputs.clock.period(rule.period)
    usage = inputs.data.usage
    frame = _between(usage, span.start, span.end)
    unpriced = frame[frame["Unpriced"]]
    findings = []
    for member, tokens in sorted(_members(unpriced, rule, "").items()):
        findings.append(
            _finding(rule, member, span, _levels(rule, tokens), value=tokens, unit="tokens",
                     summary=f"{format_value(tokens, 'tokens')} with no price {span.phrase}", clock=inputs.clock,
                     detail="these tokens are not in any cost: add the model to the price table "
                            "or map the deployment to a priced model")
        )  # fmt: skip
    return _with_details(findings, usage[usage["Unpriced"]], span, "", inputs.clock)


def _health_span(rule: Rule, clock: Clock) -> PeriodSpan:
    """The rule's last N ended cost windows, `grace_minutes` allowed for ingestion."""
    width = timedelta(minutes=clock.window_minutes)
    end = window_containing(clock.now - timedelta(minutes=rule.grace_minutes), clock.window_minutes).start
    start = end - rule.windows * width
    label = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    # Once a day per level: a lasting gap must not mail every window.
    return PeriodSpan(start, end, f"{(end - width):%Y-%m-%d}", label, label)


def _no_metrics(rule: Rule, inputs: Inputs) -> list[Finding]:
    data, clock = inputs.data, inputs.clock
    span = _health_span(rule, clock)
    start, end = span.start, span.end
    width = timedelta(minutes=clock.window_minutes)
    traffic = data.traffic[data.traffic["CallsOk"] > 0]
    windows_with_traffic = 0
    for index in range(rule.windows):
        w_start = start + index * width
        overlapping = (traffic["FirstCallAt"] < pd.Timestamp(w_start + width)) & (
            traffic["LastCallAt"] >= pd.Timestamp(w_start)
        )
        windows_with_traffic += bool(overlapping.any())
    tokens = Decimal(int(_between(data.usage, start, end)["TotalTokens"].sum()))
    calls = int(
        traffic[(traffic["FirstCallAt"] < pd.Timestamp(end)) & (traffic["LastCallAt"] >= pd.Timestamp(start))][
            "CallsOk"
        ].sum()
    )
    lost = windows_with_traffic == rule.windows and tokens == 0
    summary = (
        f"no token metrics in {rule.windows} cost windows ({span.label}) while synthetic traffic made {calls} calls"
        if lost
        else f"{format_value(tokens, 'tokens')} metered in {span.label}"
    )
    verdict = Verdict("critical", 2, "critical", Decimal(0)) if lost else Verdict(threshold=Decimal(0))
    return [
        _finding(rule, "", span, verdict, value=tokens, unit="tokens", summary=summary, clock=clock,
                 detail="check the APIM diagnostic (metrics: true), the App Insights logger and "
                        "CustomMetricsOptedInType = WithDimensions")
    ]  # fmt: skip


@dataclass(frozen=True)
class _Comparison:
    """One part of a reconciliation: metered tokens against the ground truth."""

    what: str  # "plain calls" / "streamed calls (APIM estimates)"
    got: Decimal
    expected: Decimal
    tolerance_percent: Decimal

    @property
    def off_percent(self) -> Decimal:
        return abs(self.got - self.expected) * 100 / self.expected

    @property
    def rank(self) -> int:
        off = self.off_percent
        return 2 if off > self.tolerance_percent * 3 else 1 if off > self.tolerance_percent else 0

    def text(self) -> str:
        direction = "fewer" if self.got < self.expected else "more"
        gap = abs(self.got - self.expected)
        # Two decimals: a single token off in 10,000 must not read "0.0%".
        off = self.off_percent.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        return (
            f"{self.what}: metered {format_value(self.got, 'tokens')} vs {format_value(self.expected, 'tokens')} "
            f"sent, {format_value(gap, 'tokens')} {direction} ({off}%, tolerance "
            f"{format_value(self.tolerance_percent, '%')})"
        )


_RANKED_LEVELS: dict[int, tuple[str, Severity]] = {
    2: ("critical", "critical"),
    1: ("warning", "warning"),
    0: ("", "ok"),
}


def _sum_of(frame: pd.DataFrame, keys: Sequence[tuple[str, ...]], column: str) -> Decimal:
    """The column summed over the frame's rows at these index keys (absent keys count 0)."""
    present = [key for key in keys if key in frame.index]
    return Decimal(int(frame.loc[present, column].sum())) if present else Decimal(0)


def _reconciliation(rule: Rule, inputs: Inputs) -> list[Finding]:
    """Per subscription, plain calls compared to the token and streamed calls with their own
    tolerance: APIM meters the first from the response's usage and estimates the second, so like
    is compared with like (summary rows carry the estimated part, EstimatedTokens)."""
    span = _health_span(rule, inputs.clock)
    start, end = span.start, span.end
    data = inputs.data
    traffic = data.traffic
    key = ["Subscription", "UserId", "Deployment"]
    overlapping = traffic[(traffic["FirstCallAt"] < pd.Timestamp(end)) & (traffic["LastCallAt"] >= pd.Timestamp(start))]
    inside = (overlapping["FirstCallAt"] >= pd.Timestamp(start)) & (overlapping["LastCallAt"] < pd.Timestamp(end))
    # A user whose runs straddle the range cannot be compared: its metered tokens would include
    # calls the ground truth does not count (or the reverse).
    straddling = overlapping[~inside][key].drop_duplicates()
    usable = overlapping.merge(straddling, on=key, how="left", indicator=True)
    usable = usable[usable["_merge"] == "left_only"]
    truth = usable.groupby(key)[
        ["ExactTotalTokens", "ExactUncertainCalls", "StreamedTotalTokens", "StreamedUsageUnseen"]
    ].sum()
    usage = _between(data.usage, start, end)
    metered = usage.groupby(["SubscriptionId", "UserId", "Deployment"])[["TotalTokens", "EstimatedTokens"]].sum()
    findings = []
    for subscription in sorted(set(usable["Subscription"])):
        keys = [k for k in truth.index if k[0] == subscription]
        # Streams whose usage the client never saw have no ground truth: that pair's streamed
        # tokens are left out (its plain calls are still compared). Plain calls that failed or
        # were retried may have been answered, and metered, behind the gateway after the client
        # gave up: that pair's plain tokens are left out (compared to the token, they would page).
        streamed_keys = [k for k in keys if truth.loc[k, "StreamedUsageUnseen"] == 0]
        exact_keys = [k for k in keys if truth.loc[k, "ExactUncertainCalls"] == 0]
        parts = [
            _Comparison("plain calls",
                        _sum_of(metered, exact_keys, "TotalTokens") - _sum_of(metered, exact_keys, "EstimatedTokens"),
                        _sum_of(truth, exact_keys, "ExactTotalTokens"), rule.tolerance_percent),
            _Comparison("streamed calls (APIM estimates)", _sum_of(metered, streamed_keys, "EstimatedTokens"),
                        _sum_of(truth, streamed_keys, "StreamedTotalTokens"), rule.stream_tolerance_percent),
        ]  # fmt: skip
        # Nothing to compare against is no comparison, whatever min_tokens says (and no 0/0).
        compared = [part for part in parts if part.expected > 0 and part.expected >= rule.min_tokens]
        if not compared:
            continue
        worst = max(compared, key=lambda part: (part.rank, part.off_percent))
        level, severity = _RANKED_LEVELS[worst.rank]
        left_out = [
            f"{len(keys) - len(streamed_keys)} without their streams: usage not seen by the client",
            f"{len(keys) - len(exact_keys)} without their plain calls: failed or retried calls",
        ]
        left_out = [text for text in left_out if not text.startswith("0 ")]
        findings.append(
            _finding(rule, subscription, span, Verdict(level, worst.rank, severity, worst.tolerance_percent),
                     value=worst.off_percent, unit="%", summary="; ".join(part.text() for part in compared),
                     clock=inputs.clock, scope_label=f"subscription {subscription}",
                     detail=f"{len(keys)} synthetic user x deployment pairs compared"
                            + (f" ({'; '.join(left_out)})" if left_out else "")
                            + "; a lost metric shows as fewer, a double-counted one as more")
        )  # fmt: skip
    return findings


def _window_span(comparison: WindowComparison) -> PeriodSpan:
    """A bypass finding is about one cost window; it is mailed once a day per level (a lasting bypass must
    not mail every window), so the key is the window's UTC day."""
    window = comparison.window
    label = f"{window.start:%Y-%m-%d %H:%M}–{window.end:%H:%M} UTC"
    return PeriodSpan(window.start, window.end, f"{window.start:%Y-%m-%d}", label, label)


@dataclass(frozen=True)
class _BypassVerdict:
    comparison: WindowComparison
    allowance: Decimal  # tokens the gateway may miss: a share of its exact tokens and of its estimated ones
    rank: int

    @property
    def missed_percent(self) -> Decimal:
        account = self.comparison.account_tokens
        return Decimal(self.comparison.gap_tokens) * 100 / account if account else Decimal(0)


def _bypass_verdict(rule: Rule, comparison: WindowComparison) -> _BypassVerdict:
    allowance = Allowance(rule.tolerance_percent, rule.stream_tolerance_percent).tokens(comparison)
    gap = Decimal(comparison.gap_tokens)
    verdict = _BypassVerdict(comparison, allowance, 0)
    if gap > allowance and gap >= rule.min_tokens:
        rank = 2 if verdict.missed_percent >= rule.critical_percent else 1
        verdict = _BypassVerdict(comparison, allowance, rank)
    return verdict


def _bypass(rule: Rule, inputs: Inputs) -> list[Finding]:
    """Per deployment, its worst final window of the costs run: the model account's own meters against the
    gateway's token metrics (shared/meters/). A deployment whose comparisons are pending (the account's
    metrics could not be read) and that nothing else fires for is a pending finding: no alarm, no resolve."""
    report = inputs.bypass
    if report is None or not report.enabled:
        return []
    by_deployment: dict[str, list[WindowComparison]] = {}
    for comparison in report.comparisons:
        by_deployment.setdefault(comparison.deployment.casefold(), []).append(comparison)
    findings = []
    for _, comparisons in sorted(by_deployment.items()):
        name = comparisons[-1].deployment
        verdicts = [_bypass_verdict(rule, item) for item in comparisons if item.status == "compared"]
        worst = max(verdicts, key=lambda v: (v.rank, v.comparison.gap_tokens, v.comparison.window), default=None)
        pending = [item for item in comparisons if item.status == "pending"]
        if worst is None or (pending and worst.rank == 0):
            latest = max(comparisons, key=lambda item: item.window)
            span = _window_span(latest)
            reasons = "; ".join(report.pending_reasons) or "the account's metrics were not read"
            findings.append(
                _finding(rule, name, span, Verdict(), value=Decimal(0), unit="tokens", clock=inputs.clock,
                         summary=f"comparison pending for {len(pending)} windows: {reasons}",
                         scope_label=f"deployment {name}")
            )  # fmt: skip
            findings[-1] = replace(findings[-1], pending=True)
            continue
        item = worst.comparison
        level, severity = _RANKED_LEVELS[worst.rank]
        gap = Decimal(item.gap_tokens)
        allowed = worst.allowance.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        account_tokens = format_value(Decimal(item.account_tokens), "tokens")
        summary = (
            f"{_window_span(item).label}: the account processed {account_tokens}, "
            f"the gateway metered {format_value(Decimal(item.gateway_tokens), 'tokens')}"
        )
        if worst.rank:
            summary += (
                f": {format_value(gap, 'tokens')} ({worst.missed_percent.quantize(Decimal('0.1'))}% of the account's) "
                f"not seen by the gateway, over the {format_value(allowed, 'tokens')} allowed"
            )
        else:
            summary += ", within tolerance"
        exact = item.gateway_exact_tokens
        detail = (
            f"account {item.account or '(none listed)'}: {item.account_prompt_tokens:,} prompt + "
            f"{item.account_generated_tokens:,} generated tokens. Allowed: "
            f"{format_value(rule.tolerance_percent, '%')} of the gateway's {exact:,} exact tokens + "
            f"{format_value(rule.stream_tolerance_percent, '%')} of its {item.gateway_estimated_tokens:,} estimated "
            f"(streamed) ones; {len(verdicts)} final windows compared"
            + (f", {len(pending)} pending" if pending else "")
            + ". Likely causes: calls that reach the account without the gateway (its own endpoint with a key or "
            "token), or token metrics lost between API Management and Application Insights"
        )
        findings.append(
            _finding(rule, name, _window_span(item), Verdict(level, worst.rank, severity, allowed),
                     value=max(gap, Decimal(0)), unit="tokens", summary=summary, clock=inputs.clock,
                     scope_label=f"deployment {name}", detail=detail)
        )  # fmt: skip
    return findings


def _bill_span(comparison: DayComparison) -> PeriodSpan:
    """A bill_gap finding is about one settled UTC day; mailed once per day and level."""
    day = comparison.day
    label = f"{day:%Y-%m-%d} (UTC day, settled)"
    return PeriodSpan(day, day + timedelta(days=1), f"{day:%Y-%m-%d}", label, label)


def _bill_rank(rule: Rule, comparison: DayComparison) -> int:
    gap = comparison.gap_cost
    if comparison.status != "compared" or abs(gap) < rule.min_amount or not gap:
        return 0
    percent = comparison.gap_percent
    if percent is None:  # billed where we have no cost at all
        return 2
    if abs(percent) >= rule.critical_percent:
        return 2
    return 1 if abs(percent) > rule.tolerance_percent else 0


def _bill_gap(rule: Rule, inputs: Inputs) -> list[Finding]:
    """Per model account, its worst settled day (the latest of the worst): Cost Management's actual cost against our
    cost for its deployments (shared/billing/). A day whose bill could not be read is pending: no alarm, no resolve."""
    report = inputs.bill
    if report is None or not report.enabled:
        return []
    by_account: dict[str, list[DayComparison]] = {}
    for comparison in report.comparisons:
        by_account.setdefault(comparison.account.casefold(), []).append(comparison)
    findings = []
    for _, comparisons in sorted(by_account.items()):
        name = comparisons[-1].account_name
        compared = [item for item in comparisons if item.status == "compared"]
        pending = [item for item in comparisons if item.status == "pending"]
        worst = max(compared, key=lambda item: (_bill_rank(rule, item), item.day), default=None)
        if worst is None or (pending and _bill_rank(rule, worst) == 0):
            latest = max(comparisons, key=lambda item: item.day)
            reasons = "; ".join(report.pending_reasons) or "Cost Management was not read"
            findings.append(
                replace(
                    _finding(rule, name, _bill_span(latest), Verdict(), value=Decimal(0), unit="%", clock=inputs.clock,
                             summary=f"bill comparison pending for {len(pending)} days: {reasons}",
                             scope_label=f"account {name}"),
                    pending=True,
                )
            )  # fmt: skip
            continue
        rank = _bill_rank(rule, worst)
        level, severity = _RANKED_LEVELS[rank]
        percent = worst.gap_percent
        shown = "no cost of ours" if percent is None else f"{percent:+.1f}%"
        currency = worst.currency or inputs.currency
        summary = (
            f"{worst.day:%Y-%m-%d}: billed {format_value(worst.billed_cost, currency)}, our cost "
            f"{format_value(worst.our_cost, currency)} ({shown}, gap {format_value(worst.gap_cost, currency)})"
        )
        summary += f", likely {worst.cause}" if rank and worst.cause else ", within tolerance" if not rank else ""
        detail = (
            f"account {worst.account}, {len(compared)} settled days compared"
            + (f", {len(pending)} pending" if pending else "")
            + f". Tolerance {format_value(rule.tolerance_percent, '%')} and at least "
            f"{format_value(rule.min_amount, inputs.currency)}; critical from "
            f"{format_value(rule.critical_percent, '%')}."
            + (f" Evidence: {worst.detail}." if worst.detail else "")
        )
        findings.append(
            _finding(rule, name, _bill_span(worst), Verdict(level, rank, severity, rule.tolerance_percent),
                     value=abs(percent) if percent is not None else Decimal(100), unit="%", summary=summary,
                     clock=inputs.clock, scope_label=f"account {name}", detail=detail)
        )  # fmt: skip
    return findings


EVALUATORS: dict[Kind, Evaluator] = {
    "threshold": _threshold,
    "budget": _budget,
    "spike": _spike,
    "unpriced": _unpriced,
    "no_metrics": _no_metrics,
    "reconciliation": _reconciliation,
    "bypass": _bypass,
    "bill_gap": _bill_gap,
}
