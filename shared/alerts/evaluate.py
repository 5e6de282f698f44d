"""Evaluate alert rules on the alert data: one Finding per rule x scope member (see alert_rules).

Periods are UTC and to date: "hour" is the clock hour containing `now`, "day" today, "month" this
month. A finding is firing when its value reaches a level; its period key is what noise control
counts notifications per. Day and month spend of subscriptions (and of all traffic) come from the
costs run that just finished when it has them (CostRunSummary.spend: its own windows may not be
queryable yet in Azure, where ingestion takes minutes), otherwise from the summaries.
Import only inside a run: it imports pandas.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from statistics import median
from typing import TYPE_CHECKING

import pandas as pd

from shared.alerts.data import CHART_DAYS, CHART_HOURS, AlertData
from shared.alerts.findings import ChartBar, Contributor, Finding, Severity, format_value
from shared.alerts.rules import Dimension, Period, Rule, RuleSet
from shared.money import from_micros
from shared.windows import start_of_day, start_of_month, window_containing

if TYPE_CHECKING:
    from shared.costs.totals import SubscriptionSpend

COLUMN: dict[Dimension, str] = {"subscription": "SubscriptionId", "user": "UserId", "model": "Model", "api": "ApiId"}
TOP_CONTRIBUTORS = 5
# Who to name as top contributors, by the rule's scope dimension (the scope's own is useless).
_CONTRIBUTOR_DIMENSIONS: dict[Dimension | None, tuple[Dimension, ...]] = {
    None: ("subscription", "model", "user"),
    "subscription": ("model", "user"),
    "user": ("model", "subscription"),
    "model": ("user", "subscription"),
    "api": ("model", "user"),
}
_OK: Severity = "ok"


@dataclass(frozen=True)
class FreshSpend:
    """Day- and month-to-date per subscription from the costs run (SubscriptionSpend, simplified)."""

    subscription: str
    currency: str
    day_cost: Decimal
    month_cost: Decimal
    day_tokens: int
    month_tokens: int


@dataclass(frozen=True)
class Clock:
    now: datetime
    window_minutes: int

    @property
    def hour_start(self) -> datetime:
        return self.now.replace(minute=0, second=0, microsecond=0)

    def period(self, period: Period) -> tuple[datetime, datetime, str, str]:
        """[start, end), key, label of the period containing now."""
        if period == "hour":
            start = self.hour_start
            return start, start + timedelta(hours=1), f"{start:%Y-%m-%dT%H}", f"this hour ({start:%H:00} UTC)"
        if period == "day":
            start = start_of_day(self.now)
            return start, start + timedelta(days=1), f"{start:%Y-%m-%d}", f"today ({start:%Y-%m-%d} UTC)"
        start = start_of_month(self.now)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end, f"{start:%Y-%m}", f"this month ({start:%B %Y}, to date)"


def evaluate(rules: RuleSet, data: AlertData, clock: Clock, fresh: Sequence[FreshSpend] = ()) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules.rules:
        if rule.kind in ("threshold", "budget"):
            findings.extend(_period_rule(rule, rules.currency, data, clock, fresh))
        elif rule.kind == "spike":
            findings.extend(_spike(rule, rules.currency, data, clock))
        elif rule.kind == "unpriced":
            findings.extend(_unpriced(rule, data, clock))
        elif rule.kind == "no_metrics":
            findings.append(_no_metrics(rule, data, clock))
        else:
            findings.extend(_reconciliation(rule, data, clock))
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
    members = {str(name): _as_unit(total, rule.metric) for name, total in sums.items()}
    for name in extra:
        members.setdefault(name, Decimal(0))
    return members


def _scope_label(rule: Rule, member: str) -> str:
    if rule.scope.dimension is None:
        return "all traffic"
    return f"{rule.scope.dimension} {member or rule.scope.value}"


def _member_rows(frame: pd.DataFrame, rule: Rule, member: str) -> pd.DataFrame:
    scoped = _in_scope(frame, rule)
    if rule.scope.each and rule.scope.dimension is not None:
        return scoped[scoped[COLUMN[rule.scope.dimension]] == member]
    return scoped


def _fresh_values(rule: Rule, currency: str, fresh: Sequence[FreshSpend]) -> dict[str, Decimal] | None:
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
        per_subscription[spend.subscription] = per_subscription.get(spend.subscription, Decimal(0)) + value
    if rule.scope.dimension is None:
        return {"": sum(per_subscription.values(), Decimal(0))}
    if rule.scope.value is not None:
        return {"": per_subscription[rule.scope.value]} if rule.scope.value in per_subscription else None
    return per_subscription


# -- details shown in the email --------------------------------------------------------------------


def _contributors(rows: pd.DataFrame, rule: Rule, currency: str) -> tuple[Contributor, ...]:
    values = _measure(rows, rule.metric, currency)
    total = values.sum()
    if not total:
        return ()
    found: list[Contributor] = []
    dimensions = _CONTRIBUTOR_DIMENSIONS[rule.scope.dimension]
    for dimension in dimensions:
        sums = values.groupby(rows[COLUMN[dimension]]).sum().sort_values(ascending=False)
        for name, value in list(sums.items())[:TOP_CONTRIBUTORS]:
            if value > 0:
                share = (Decimal(int(value)) * 100 / Decimal(int(total))).quantize(Decimal("0.1"))
                found.append(Contributor(dimension, str(name), _as_unit(value, rule.metric), share))
    return tuple(found)


def _chart(rows: pd.DataFrame, rule: Rule, currency: str, clock: Clock) -> tuple[tuple[ChartBar, ...], str]:
    values = _measure(rows, rule.metric, currency)
    unit = _unit(rule, currency)
    # A spike is about the latest *ended* hour or day: that is the chart's last (highlighted) bar.
    ended = 1 if rule.kind == "spike" else 0
    if rule.period == "hour":
        first = clock.hour_start - timedelta(hours=CHART_HOURS - 1 + ended)
        keys = [first + timedelta(hours=i) for i in range(CHART_HOURS)]
        by = rows["Bucket"].dt.floor("h")
        title = f"{rule.metric} per hour, last {CHART_HOURS} hours ({unit}, UTC)"
        fmt = "%H:00"
    else:
        first = start_of_day(clock.now) - timedelta(days=CHART_DAYS - 1 + ended)
        keys = [first + timedelta(days=i) for i in range(CHART_DAYS)]
        by = rows["Bucket"].dt.floor("D")
        title = f"{rule.metric} per day, last {CHART_DAYS} days ({unit}, UTC)"
        fmt = "%m-%d"
    sums = values.groupby(by).sum() if not rows.empty else pd.Series(dtype="int64")
    bars = tuple(ChartBar(key.strftime(fmt), _as_unit(sums.get(pd.Timestamp(key), 0), rule.metric)) for key in keys)
    return bars, title


def _finding(
    rule: Rule,
    member: str,
    clock: Clock,
    period: tuple[datetime, datetime, str, str],
    level: str,
    rank: int,
    severity: Severity,
    value: Decimal,
    threshold: Decimal | None,
    unit: str,
    summary: str,
    *,
    rows: pd.DataFrame | None = None,
    currency: str = "",
    detail: str = "",
) -> Finding:
    contributors: tuple[Contributor, ...] = ()
    chart: tuple[ChartBar, ...] = ()
    title = ""
    estimated: Decimal | None = None
    if level and rows is not None:  # details only for what will be mailed
        in_period = _between(rows, period[0], period[1])
        contributors = _contributors(in_period, rule, currency)
        chart, title = _chart(rows, rule, currency, clock)
        estimated = _estimated_percent(in_period, rule, currency)
    return Finding(
        rule=rule,
        member=member,
        scope_label=_scope_label(rule, member),
        period_key=period[2],
        window_label=period[3],
        level=level,
        rank=rank,
        severity=severity,
        value=value,
        threshold=threshold,
        unit=unit,
        summary=summary,
        detail=detail,
        contributors=contributors,
        chart=chart,
        chart_title=title,
        estimated_percent=estimated,
    )


def _estimated_percent(rows: pd.DataFrame, rule: Rule, currency: str) -> Decimal | None:
    """How much of the rows' cost (or tokens) rests on tokens APIM estimated, in percent."""
    if rule.metric not in ("cost", "tokens"):
        return None
    whole = _measure(rows, rule.metric, currency).sum()
    if not whole:
        return None
    part = _measure(rows, rule.metric, currency, estimated=True).sum()
    return (Decimal(int(part)) * 100 / Decimal(int(whole))).quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)


def _levels(rule: Rule, value: Decimal) -> tuple[str, int, Severity, Decimal | None]:
    if rule.critical is not None and value >= rule.critical:
        return "critical", 2, "critical", rule.critical
    if rule.warning is not None and value >= rule.warning:
        return "warning", 1, "warning", rule.warning
    return "", 0, "ok", rule.warning if rule.warning is not None else rule.critical


# -- rule kinds ------------------------------------------------------------------------------------


def _period_rule(
    rule: Rule, currency: str, data: AlertData, clock: Clock, fresh: Sequence[FreshSpend]
) -> list[Finding]:
    period = clock.period(rule.period)
    frame = _between(data.usage, period[0], period[1])
    values = _members(frame, rule, currency)
    from_run = _fresh_values(rule, currency, fresh)
    if from_run is not None:
        values.update(from_run)
    unit = _unit(rule, currency)
    findings = []
    for member, value in sorted(values.items()):
        rows = _member_rows(data.usage, rule, member)
        if rule.kind == "threshold":
            level, rank, severity, threshold = _levels(rule, value)
            summary = f"{format_value(value, unit)} {period[3].split(' (')[0]}"
            if threshold is not None:
                relation = "over" if level else "under"
                summary += f", {relation} the {level or 'warning'} level {format_value(threshold, unit)}"
            findings.append(
                _finding(
                    rule,
                    member,
                    clock,
                    period,
                    level,
                    rank,
                    severity,
                    value,
                    threshold,
                    unit,
                    summary,
                    rows=rows,
                    currency=currency,
                )
            )
        else:
            findings.append(_budget(rule, member, clock, period, value, unit, rows, currency))
    return findings


def _budget(
    rule: Rule,
    member: str,
    clock: Clock,
    period: tuple[datetime, datetime, str, str],
    spent: Decimal,
    unit: str,
    rows: pd.DataFrame,
    currency: str,
) -> Finding:
    assert rule.amount is not None
    percent = spent * 100 / rule.amount
    crossed = [p for p in rule.percents if percent >= p]
    level, rank, severity = "", 0, _OK
    if crossed:
        level, rank = f"{crossed[-1].normalize():f}%", int(crossed[-1] * 100)
        severity = "critical" if crossed[-1] >= 100 else "warning"
    when = period[3].split(" (")[0].replace("this month", "this month to date")
    summary = (
        f"{format_value(spent, unit)} {when}, {percent.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)}% of "
        f"{format_value(rule.amount, unit)} budget"
    )
    detail = ""
    start, end = period[0], period[1]
    elapsed = (clock.now - start).total_seconds()
    length = (end - start).total_seconds()
    forecast_due = elapsed > 0 and Decimal(elapsed) * 100 / Decimal(length) >= rule.forecast_min_elapsed_percent
    projected = spent * Decimal(length) / Decimal(elapsed) if elapsed > 0 else Decimal(0)
    # Exceeding is worse than any lower percentage, not as bad as having exceeded (100% = 10000).
    forecast_rank = 9999
    if rule.forecast and forecast_due and Decimal(0) < spent < rule.amount < projected and forecast_rank > rank:
        exceed_at = start + timedelta(seconds=float(rule.amount / spent) * elapsed)
        when = f"on {exceed_at:%Y-%m-%d}" if rule.period == "month" else f"at {exceed_at:%H:%M} UTC"
        detail = f"at the rate so far the {rule.period} ends at {format_value(projected, unit)}"
        level, rank, severity = "forecast", forecast_rank, "warning"
        summary += f", projected to exceed {when}"
    return _finding(
        rule, member, clock, period, level, rank, severity, spent, rule.amount, unit, summary,
        rows=rows, currency=currency, detail=detail,
    )  # fmt: skip


def _spike(rule: Rule, currency: str, data: AlertData, clock: Clock) -> list[Finding]:
    step = timedelta(hours=1) if rule.period == "hour" else timedelta(days=1)
    latest_start = (clock.hour_start if rule.period == "hour" else start_of_day(clock.now)) - step
    latest = _members(_between(data.usage, latest_start, latest_start + step), rule, currency)
    history = []
    for days_back in range(1, rule.baseline_days + 1):
        start = latest_start - timedelta(days=days_back)
        history.append(_members(_between(data.usage, start, start + step), rule, currency))
    unit = _unit(rule, currency)
    hours = f"{latest_start:%H:00}–{latest_start + step:%H:00} UTC"
    label = hours if rule.period == "hour" else f"{latest_start:%Y-%m-%d}"
    period = (latest_start, latest_start + step, f"{latest_start:%Y-%m-%dT%H}", f"the hour {label}")
    if rule.period == "day":
        period = (latest_start, latest_start + step, f"{latest_start:%Y-%m-%d}", f"the day {label}")
    findings = []
    for member, value in sorted(latest.items()):
        seen = [values[member] for values in history if member in values and values[member] > 0]
        if not seen:
            continue  # no history: a new scope is not a spike (threshold rules cover new big spenders)
        baseline = Decimal(median([values.get(member, Decimal(0)) for values in history]))
        factor = value / baseline if baseline > 0 else Decimal("Infinity")
        level, rank, severity, threshold = "", 0, _OK, rule.warning
        if value >= rule.min_value:
            level, rank, severity, threshold = _levels(rule, factor)
        times = "∞" if not factor.is_finite() else f"{factor.quantize(Decimal('0.1'))}"
        summary = (
            f"{format_value(value, unit)} in {period[3].removeprefix('the ')}, {times}× the {rule.baseline_days}-day "
            f"median of {format_value(baseline, unit)}"
        )
        findings.append(
            _finding(rule, member, clock, period, level, rank, severity, value, threshold, unit, summary,
                     rows=_member_rows(data.usage, rule, member), currency=currency,
                     detail=f"minimum volume {format_value(rule.min_value, unit)}")
        )  # fmt: skip
    return findings


def _unpriced(rule: Rule, data: AlertData, clock: Clock) -> list[Finding]:
    period = clock.period(rule.period)
    frame = _between(data.usage, period[0], period[1])
    unpriced = frame[frame["Unpriced"]]
    findings = []
    for member, tokens in sorted(_members(unpriced, rule, "").items()):
        level, rank, severity, threshold = _levels(rule, tokens)
        summary = f"{format_value(tokens, 'tokens')} with no price {period[3].split(' (')[0]}"
        findings.append(
            _finding(rule, member, clock, period, level, rank, severity, tokens, threshold, "tokens", summary,
                     rows=_member_rows(data.usage[data.usage["Unpriced"]], rule, member),
                     detail="these tokens are not in any cost: add the model to the price table "
                            "or map the deployment to a priced model")
        )  # fmt: skip
    return findings


def _health_range(rule: Rule, clock: Clock) -> tuple[datetime, datetime, tuple[datetime, datetime, str, str]]:
    width = timedelta(minutes=clock.window_minutes)
    end = window_containing(clock.now - timedelta(minutes=rule.grace_minutes), clock.window_minutes).start
    start = end - rule.windows * width
    label = f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    # Once a day per level: a lasting gap must not mail every window.
    return start, end, (start, end, f"{(end - width):%Y-%m-%d}", label)


def _no_metrics(rule: Rule, data: AlertData, clock: Clock) -> Finding:
    start, end, period = _health_range(rule, clock)
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
        f"no token metrics in {rule.windows} cost windows ({period[3]}) while synthetic traffic made {calls} calls"
        if lost
        else f"{format_value(tokens, 'tokens')} metered in {period[3]}"
    )
    return _finding(
        rule, "", clock, period, "critical" if lost else "", 2 if lost else 0, "critical" if lost else "ok",
        tokens, Decimal(0), "tokens", summary,
        detail="check the APIM diagnostic (metrics: true), the App Insights logger and "
               "CustomMetricsOptedInType = WithDimensions",
    )  # fmt: skip


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


_RANKED_LEVELS: dict[int, tuple[str, Severity]] = {2: ("critical", "critical"), 1: ("warning", "warning"), 0: ("", _OK)}


def _sum_of(frame: pd.DataFrame, keys: Sequence[tuple[str, ...]], column: str) -> Decimal:
    """The column summed over the frame's rows at these index keys (absent keys count 0)."""
    present = [key for key in keys if key in frame.index]
    return Decimal(int(frame.loc[present, column].sum())) if present else Decimal(0)


def _reconciliation(rule: Rule, data: AlertData, clock: Clock) -> list[Finding]:
    """Per subscription, plain calls compared to the token and streamed calls with their own
    tolerance: APIM meters the first from the response's usage and estimates the second, so like
    is compared with like (summary rows carry the estimated part, EstimatedTokens)."""
    start, end, period = _health_range(rule, clock)
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
            Finding(
                rule=rule, member=subscription, scope_label=f"subscription {subscription}", period_key=period[2],
                window_label=period[3], level=level, rank=worst.rank, severity=severity, value=worst.off_percent,
                threshold=worst.tolerance_percent, unit="%", summary="; ".join(part.text() for part in compared),
                detail=f"{len(keys)} synthetic user x deployment pairs compared"
                       + (f" ({'; '.join(left_out)})" if left_out else "")
                       + "; a lost metric shows as fewer, a double-counted one as more",
            )
        )  # fmt: skip
    return findings


def fresh_spend(spend: Iterable[SubscriptionSpend]) -> list[FreshSpend]:
    """CostRunSummary.spend as FreshSpend."""
    return [
        FreshSpend(item.subscription_id, item.currency, item.day_cost, item.month_cost, item.day_tokens,
                   item.month_tokens)
        for item in spend
    ]  # fmt: skip
