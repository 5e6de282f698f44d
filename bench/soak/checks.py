"""What the soak checks at the end, against what really happened.

Money: every final window's summary (its latest complete revision, the shipped reader query) against the
synthetic traffic's ground truth (ground-truth.kql: what the plain calls' responses reported), priced by the
costs run's own pricing step (shared/costs/frame.py price_frame) with the run's own price table and deployments.
Per window x deployment x subscription x user: the exact (plain) tokens must be equal, and the cost of the truth's
exact tokens plus the summary's own estimated tokens (APIM's estimates of streamed calls are no truth) must equal
the summary's cost to the micro-unit. A group in the truth but not the summary is a skipped window; one in the
summary but not the truth, or with more tokens, is double counted.

Emails: every .eml in the outbox (SMTP and Communication Services land in the same one), each notification's ref
(shared/alerts/findings.py notification_ref, a line "  Ref:  <ref>" in the text part) counted per distinct email.
A ref in two different emails is a duplicate; the same email (Message-ID) delivered twice is the residual case
(a transport accepted it and the run never learnt so) and is counted apart. Misses: a notification the state
still holds as pending, one it holds as sent that no email carries, and, as an oracle independent of the state,
each day of the soak whose final spend crossed the demo budget's top threshold without its one email.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GROUND_TRUTH_QUERY = Path(__file__).with_name("ground-truth.kql")
GROUND_TRUTH_COLUMNS = (
    "RunId",
    "Subscription",
    "UserId",
    "Deployment",
    "ExactCalls",
    "ExactPromptTokens",
    "ExactCachedTokens",
    "ExactCompletionTokens",
    "ExactUncertainCalls",
    "FirstCallAt",
    "LastCallAt",
)
GROUP = ("WindowStart", "Deployment", "SubscriptionId", "UserId")


def summary_columns() -> tuple[str, ...]:
    schemas = json.loads((ROOT / "shared" / "logs" / "schemas" / "log_tables.json").read_text(encoding="utf-8"))
    return tuple(column["name"] for column in schemas["custom"]["TokenCostSummary_CL"]["columns"])


@dataclass
class MoneyCheck:
    final_windows: int = 0
    groups: int = 0  # window x deployment x subscription x user compared
    groups_without_estimates: int = 0
    uncertain_groups: int = 0  # the truth has failed or retried plain calls: not compared
    skipped: list[str] = field(default_factory=list)  # truth with no summary
    double_counted: list[str] = field(default_factory=list)  # summary exact tokens above the truth, or no truth
    short: list[str] = field(default_factory=list)  # summary exact tokens below the truth (lost)
    cost_mismatches: list[str] = field(default_factory=list)
    exact_tokens: int = 0
    cost_micros: int = 0  # the compared summaries' total
    cache_unmetered_tokens: int = 0  # cached tokens the gateway's metrics could not see (priced as input)
    straddling_runs: int = 0  # traffic runs whose calls span two windows (then compared by their first call)

    @property
    def ok(self) -> bool:
        return not (self.skipped or self.double_counted or self.short or self.cost_mismatches)


def check_money(settings: Any, start: datetime, end: datetime) -> MoneyCheck:
    """Final windows whose start is in [start, end) against the ground truth. `settings`: shared.config.Settings."""
    import pandas as pd

    from shared.costs.frame import price_frame, usage_frame
    from shared.costs.query import KEY_COLUMNS, TOKEN_COLUMNS
    from shared.costs.recompute import load_inputs
    from shared.logs.kql import render_query
    from shared.logs.query import query_table
    from shared.windows import Window

    costs = settings.costs
    inputs = load_inputs(costs)
    client = inputs.clients.query
    columns = summary_columns()
    from shared.logs.kql import load_query

    summary_query = load_query("cost-summary-latest.kql", {"start_time": start, "end_time": end})
    summaries = pd.DataFrame(
        _rows(client, costs.workspace_id, summary_query, (start, end + timedelta(days=2))), columns=list(columns)
    )
    truth_query = render_query(
        GROUND_TRUTH_QUERY.read_text(encoding="utf-8"),
        {"start_time": start, "end_time": end},
        source=str(GROUND_TRUTH_QUERY),
    )
    truth_rows = query_table(
        client,
        costs.workspace_id,
        "soak: ground truth",
        truth_query,
        (start - timedelta(days=1), end + timedelta(days=2)),
        GROUND_TRUTH_COLUMNS,
    )
    truth = pd.DataFrame([list(row) for row in truth_rows], columns=list(GROUND_TRUTH_COLUMNS))
    result = MoneyCheck()
    width = timedelta(minutes=costs.window_minutes)
    final = summaries[summaries["IsFinal"].astype(bool)].copy() if len(summaries) else summaries
    if not len(final):
        return result
    final["WindowStart"] = pd.to_datetime(final["WindowStart"], utc=True)
    final_starts = set(final["WindowStart"])
    result.final_windows = len(final_starts)
    usage = final[final["CostBasis"] == "usage"]
    if len(truth):
        first = pd.to_datetime(truth["FirstCallAt"], utc=True)
        truth["WindowStart"] = first.dt.floor(f"{costs.window_minutes}min")
        last_start = pd.to_datetime(truth["LastCallAt"], utc=True).dt.floor(f"{costs.window_minutes}min")
        result.straddling_runs = int((last_start != truth["WindowStart"]).sum())
        truth = truth[truth["WindowStart"].isin(final_starts)].rename(columns={"Subscription": "SubscriptionId"})
    counts = ["ExactCalls", "ExactPromptTokens", "ExactCachedTokens", "ExactCompletionTokens", "ExactUncertainCalls"]
    truth_by_group = truth.groupby(list(GROUP))[counts].sum() if len(truth) else pd.DataFrame(columns=counts)
    numeric = [
        "Requests",
        "PromptTokens",
        "CachedPromptTokens",
        "CompletionTokens",
        "EstimatedRequests",
        "EstimatedPromptTokens",
        "EstimatedCompletionTokens",
    ]
    for name in numeric:
        usage[name] = usage[name].astype("int64")
    usage = usage.assign(CostMicros=[_micros(value) for value in usage["TotalCost"]])
    apis = usage.groupby(list(GROUP))["ApiId"].nunique()
    summed = usage.groupby(list(GROUP))[[*numeric, "CostMicros"]].sum()
    summed["CacheDiscountMetered"] = usage.groupby(list(GROUP))["CacheDiscountMetered"].all()
    expected_rows: list[dict[str, Any]] = []
    for key, row in summed.iterrows():
        label = _label(key)
        exact = (
            row["PromptTokens"] - row["EstimatedPromptTokens"],
            row["CompletionTokens"] - row["EstimatedCompletionTokens"],
        )
        if key not in truth_by_group.index:
            if exact[0] or exact[1]:
                result.double_counted.append(f"{label}: {exact[0] + exact[1]} exact tokens, no plain calls sent")
            continue
        seen = truth_by_group.loc[key]
        result.groups += 1
        if seen["ExactUncertainCalls"]:
            result.uncertain_groups += 1
            continue
        wanted = (int(seen["ExactPromptTokens"]), int(seen["ExactCompletionTokens"]))
        if exact != wanted:
            where = result.double_counted if exact > wanted else result.short
            where.append(f"{label}: exact prompt/completion {exact[0]}/{exact[1]}, sent {wanted[0]}/{wanted[1]}")
            continue
        if apis.loc[key] != 1:  # the summary rounds per API: one expected row would not match
            continue
        metered = bool(row["CacheDiscountMetered"])
        if metered and int(row["CachedPromptTokens"]) != int(seen["ExactCachedTokens"]):
            result.short.append(
                f"{label}: cached {int(row['CachedPromptTokens'])}, sent {int(seen['ExactCachedTokens'])}"
            )
            continue
        result.cache_unmetered_tokens += 0 if metered else int(seen["ExactCachedTokens"])
        result.exact_tokens += sum(wanted)
        result.cost_micros += int(row["CostMicros"])
        result.groups_without_estimates += int(row["EstimatedRequests"] == 0)
        expected_rows.append(
            {
                "WindowStart": key[0],
                "Deployment": key[1],
                "SubscriptionId": key[2],
                "UserId": key[3],
                "ApiId": usage.loc[
                    (usage["WindowStart"] == key[0])
                    & (usage["Deployment"] == key[1])
                    & (usage["SubscriptionId"] == key[2])
                    & (usage["UserId"] == key[3]),
                    "ApiId",
                ].iloc[0],
                "Requests": int(seen["ExactCalls"]) + int(row["EstimatedRequests"]),
                "PromptTokens": wanted[0] + int(row["EstimatedPromptTokens"]),
                # What the gateway metered of the cache: APIM's token metrics carry cached tokens only with
                # llm-emit-token-metric (shared/logs/kql/token-usage-by-window.kql); without, the summary prices
                # them as input (CacheDiscountMetered false) and the truth is priced the same way, the gap counted.
                "CachedPromptTokens": int(seen["ExactCachedTokens"]) if metered else 0,
                "CompletionTokens": wanted[1] + int(row["EstimatedCompletionTokens"]),
                "EstimatedRequests": int(row["EstimatedRequests"]),
                "EstimatedPromptTokens": int(row["EstimatedPromptTokens"]),
                "EstimatedCompletionTokens": int(row["EstimatedCompletionTokens"]),
                "CacheMeteredRequests": int(seen["ExactCalls"]) if metered else 0,
                "Summary": int(row["CostMicros"]),
            }
        )
    for key in truth_by_group.index:
        if key not in summed.index and truth_by_group.loc[key]["ExactPromptTokens"] > 0:
            result.skipped.append(
                f"{_label(key)}: {int(truth_by_group.loc[key]['ExactCalls'])} plain calls, no summary"
            )
    if expected_rows:
        columns_in = {name: [] for name in ("WindowStart", *KEY_COLUMNS, *TOKEN_COLUMNS)}  # type: dict[str, list[Any]]
        for item in expected_rows:
            item["TotalTokens"] = item["PromptTokens"] + item["CompletionTokens"]
            item["EstimatedTotalTokens"] = item["EstimatedPromptTokens"] + item["EstimatedCompletionTokens"]
            for name in columns_in:
                columns_in[name].append(item.get(name, 0))
        frame = usage_frame(columns_in)
        windows = [
            Window(start.to_pydatetime(), start.to_pydatetime() + width) for start in sorted(set(frame["WindowStart"]))
        ]
        priced = price_frame(frame, inputs.prices, inputs.deployments, windows=windows).frame
        for position, item in enumerate(expected_rows):
            got = int(priced["TotalCostMicros"].iloc[position])
            if got != item["Summary"]:
                key = (item["WindowStart"], item["Deployment"], item["SubscriptionId"], item["UserId"])
                result.cost_mismatches.append(f"{_label(key)}: summary {item['Summary']} micro-units, truth {got}")
    return result


def _rows(client: Any, workspace_id: str, query: str, timespan: tuple[datetime, datetime]) -> list[dict[str, Any]]:
    """The answer's rows by column name (the reader query's column order is its own); a partial answer fails."""
    from azure.monitor.query import LogsQueryStatus

    response = client.query_workspace(workspace_id, query, timespan=timespan)
    if response.status != LogsQueryStatus.SUCCESS:
        raise RuntimeError(f"soak check query answered {response.status}: {getattr(response, 'partial_error', '')}")
    table = response.tables[0]
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def _micros(value: Any) -> int:
    return int(Decimal(str(value)).scaleb(6).to_integral_value())


def _label(key: Sequence[Any]) -> str:
    start = key[0]
    when = start.strftime("%Y-%m-%d %H:%M") if hasattr(start, "strftime") else str(start)
    return f"{when} {key[1]} {key[2]}/{key[3]}"


@dataclass
class EmailCheck:
    emails: int = 0  # .eml files
    distinct_emails: int = 0  # distinct Message-IDs
    notifications: int = 0  # distinct refs mailed
    resent_same_email: int = 0  # deliveries of an email (same Message-ID) beyond its first: the residual case
    duplicates: list[str] = field(default_factory=list)  # a ref in two different emails
    pending_at_end: list[str] = field(default_factory=list)
    sent_not_mailed: list[str] = field(default_factory=list)
    oracle_days: int = 0
    oracle_misses: list[str] = field(default_factory=list)
    by_transport: dict[str, int] = field(default_factory=dict)  # a dict: asdict() garbles a Counter
    per_rule: dict[str, int] = field(default_factory=dict)  # notifications mailed per rule
    late_row_alarms: int = 0  # quiet rules' alarms whose window holds a late metric row (counted apart)
    # The same rule x scope x period x level mailed again after its resolve (or the same resolve after a new fire).
    refired_after_resolve: int = 0
    false_alarms: list[str] = field(default_factory=list)  # notifications of the rules that must stay quiet

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates or self.pending_at_end or self.sent_not_mailed or self.oracle_misses or self.false_alarms
        )


@dataclass(frozen=True)
class MailedItem:
    rule: str
    ref: str
    scope: str  # the scope label the item's first line names ("subscription team-a")
    resolved: bool
    window: str = ""  # its "Window:" line: "2026-12-01 01:00–02:00 UTC"


@dataclass(frozen=True)
class Mailed:
    message_id: str
    transport: str  # "smtp", or "acs" when the Communication Services stand-in wrote it (no Return-Path)
    items: tuple[MailedItem, ...]


def read_outbox(outbox: Path) -> list[Mailed]:
    """Every .eml in delivery order (the outboxes name files by their arrival time). An item starts with its
    "[LEVEL] scope: ..." line; its rule is the "  Rule: <name> in <file>" line and its ref the "  Ref:  " one."""
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = ""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                text = str(part.get_content())
                break
        items: list[MailedItem] = []
        head, rule, window = "", "", ""
        for line in text.splitlines():
            if line.startswith("["):
                head, window = line, ""
            elif line.startswith("  Window:"):
                window = line.partition(":")[2].strip()
            elif line.startswith("  Rule: "):
                rule = line[len("  Rule: ") :].rpartition(" in ")[0]
            elif line.startswith("  Ref:  "):
                scope = head.partition("] ")[2].partition(": ")[0]
                items.append(MailedItem(rule, line.split()[-1], scope, head.startswith("[RESOLVED"), window))
        transport = "smtp" if message.get("Return-Path") else "acs"
        found.append(Mailed(str(message.get("Message-ID", "")).strip(), transport, tuple(items)))
    return found


# Rules that watch the pipeline itself: under the soak's faults they must stay quiet (a notification is a false alarm).
# Not bill_gap: the bill check rightly fires on the soak's traffic, whose cached prompt tokens APIM's metrics cannot
# see, so each settled day is billed some 25% under our list-price cost ("cache tokens billed differently").
QUIET_KINDS = ("reconciliation", "bypass", "no_metrics", "unpriced")


def check_emails(
    outbox: Path,
    records: Mapping[str, Any],
    daily_budget: tuple[str, Decimal, Sequence[Decimal]] | None,
    day_spend: Mapping[str, Decimal],
    rule_kinds: Mapping[str, str] | None = None,
    late_minutes: Sequence[datetime] = (),
) -> EmailCheck:
    """`records`: the final alert state (key -> AlertRecord). `daily_budget`: (rule name, amount, threshold percents)
    of a day-budget rule over all traffic, the oracle; `day_spend`: each whole soak day's final spend. `rule_kinds`:
    rule name -> kind, to count the quiet rules' notifications as false alarms; one whose window holds a metric row
    the gateway sent late (`late_minutes`, the chaos log's held rows) is counted apart: at the time it was judged,
    a row that late looked lost (the rules cannot tell), and its resolve follows once the row lands."""
    from shared.alerts.findings import notification_ref

    result = EmailCheck()
    delivered = read_outbox(outbox)
    result.emails = len(delivered)
    deliveries = Counter(mailed.message_id for mailed in delivered)
    result.distinct_emails = len(deliveries)
    result.resent_same_email = sum(count - 1 for count in deliveries.values())
    emails_of: dict[str, list[int]] = defaultdict(list)  # ref -> positions of the distinct emails carrying it
    rule_of: dict[str, str] = {}
    # (rule, scope, resolved) -> positions of the emails with such an item
    kind_at: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    first_position: dict[str, int] = {}
    for position, mailed in enumerate(delivered):
        result.by_transport[mailed.transport] = result.by_transport.get(mailed.transport, 0) + 1
        if first_position.setdefault(mailed.message_id, position) != position:
            continue  # the same email delivered again: counted above
        for item in mailed.items:
            emails_of[item.ref].append(position)
            rule_of[item.ref] = item.rule
            kind_at[(item.rule, item.scope, item.resolved)].append(position)
    scope_of = {item.ref: item.scope for mailed in delivered for item in mailed.items}
    is_resolve = {item.ref: item.resolved for mailed in delivered for item in mailed.items}
    result.notifications = len(emails_of)
    for rule in rule_of.values():
        result.per_rule[rule] = result.per_rule.get(rule, 0) + 1
    quiet = {name for name, kind in (rule_kinds or {}).items() if kind in QUIET_KINDS}
    window_of = {item.ref: item.window for mailed in delivered for item in mailed.items}
    resolves = resolve_refs(delivered)
    for ref in sorted(rule_of):
        if rule_of[ref] not in quiet or ref in resolves:
            continue
        if any(_in_window(minute, window_of[ref]) for minute in late_minutes):
            result.late_row_alarms += 1
        else:
            result.false_alarms.append(f"{rule_of[ref]} {scope_of[ref]} {window_of[ref]} (ref {ref})")
    for ref, positions in sorted(emails_of.items()):
        # The same level of the same period again after the alert was resolved in between (or the same resolve
        # after it fired again in between) is a new incident, which the rules mail again: not a duplicate.
        opposite = kind_at.get((rule_of[ref], scope_of[ref], not is_resolve[ref]), [])
        for earlier, later in itertools.pairwise(positions):
            if any(earlier < at < later for at in opposite):
                result.refired_after_resolve += 1
            else:
                result.duplicates.append(f"ref {ref} ({rule_of[ref]}, {scope_of[ref]}) in emails {earlier} and {later}")
    for record in records.values():
        if record.pending_kind:
            result.pending_at_end.append(
                f"{record.key} {record.pending_kind} {record.pending_period} {record.pending_level}"
            )
        if record.notified_level:
            ref = notification_ref(record.key, record.notified_period, record.notified_level, "fired")
            if ref not in emails_of:
                result.sent_not_mailed.append(f"{record.key} {record.notified_period} {record.notified_level}")
    if daily_budget is not None:
        rule, amount, percents = daily_budget
        key = next((record.key for record in records.values() if record.rule == rule), f"{rule}|")
        for day, spent in sorted(day_spend.items()):
            reached = [percent for percent in percents if spent * 100 >= amount * percent]
            if not reached:
                continue
            result.oracle_days += 1
            ref = notification_ref(key, day, f"{reached[-1].normalize():f}%", "fired")
            if len(emails_of.get(ref, ())) != 1:
                result.oracle_misses.append(
                    f"{rule} {day}: spent {spent}, {reached[-1].normalize():f}% in {len(emails_of.get(ref, ()))} emails"
                )
    return result


def resolve_refs(delivered: Sequence[Mailed]) -> set[str]:
    return {item.ref for mailed in delivered for item in mailed.items if item.resolved}


def _in_window(minute: datetime, window: str) -> bool:
    """Whether `minute` lies in an item's window text, "2026-12-01 22:00–01:00 UTC" (an end at or before the start
    is the next day's)."""
    match = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d)\u2013(\d\d:\d\d) UTC$", window)
    if match is None:
        return False
    start = datetime.fromisoformat(f"{match[1]}T{match[2]}+00:00")
    end = datetime.fromisoformat(f"{match[1]}T{match[3]}+00:00")
    if end <= start:
        end += timedelta(days=1)
    return start <= minute < end


def late_rows(chaos_log: Path) -> list[datetime]:
    """The minutes whose metric rows the gateway's chaos held back ("... of 2026-12-01T02:40Z held until ...")."""
    if not chaos_log.exists():
        return []
    found = []
    for line in chaos_log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        match = re.search(r"of (\d{4}-\d\d-\d\dT\d\d:\d\d)Z held", entry.get("detail", ""))
        if entry.get("kind") == "late" and match:
            found.append(datetime.fromisoformat(match[1] + ":00+00:00"))
    return found


def day_spend(settings: Any, days: Iterable[datetime]) -> dict[str, Decimal]:
    """Each day's final spend over all traffic, from the summaries' latest complete revisions."""
    from shared.costs.recompute import load_inputs
    from shared.logs.kql import load_query

    costs = settings.costs
    client = load_inputs(costs).clients.query
    spend: dict[str, Decimal] = {}
    for day in days:
        query = load_query("cost-summary-latest.kql", {"start_time": day, "end_time": day + timedelta(days=1)})
        rows = _rows(client, costs.workspace_id, query, (day, day + timedelta(days=3)))
        spend[f"{day:%Y-%m-%d}"] = sum((Decimal(str(row["TotalCost"])) for row in rows), Decimal(0))
    return spend


def utc_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.soak.checks --settings F --start ISO --days N --outbox DIR`: both checks as one JSON line."""
    import argparse
    import os
    from dataclasses import asdict

    from shared.alerts.rules import load_rules
    from shared.alerts.run import build_clients
    from shared.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m bench.soak.checks")
    parser.add_argument("--settings", type=Path, required=True)
    parser.add_argument("--start", type=datetime.fromisoformat, required=True)
    parser.add_argument("--days", type=float, required=True)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--chaos-log", type=Path, default=None, help="chaos-injected.jsonl (late rows explain alarms)")
    args = parser.parse_args(argv)
    values = json.loads(args.settings.read_text(encoding="utf-8"))["Values"]
    os.environ.update({key: values[key] for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER") if key in values})
    settings = load_settings(values)
    end = args.start + timedelta(days=args.days)
    money = check_money(settings, args.start, end)
    rules = load_rules(settings.alerts.rules_file).rules
    budget = next(
        (
            rule
            for rule in rules
            if rule.kind == "budget" and rule.period == "day" and rule.scope.dimension is None
        ),
        None,
    )
    spend = day_spend(settings, [args.start + timedelta(days=n) for n in range(int(args.days))])
    records = build_clients(settings.alerts).state.load()
    oracle = (budget.name, budget.amount, budget.percents) if budget is not None and budget.amount else None
    late = late_rows(args.chaos_log) if args.chaos_log else []
    emails = check_emails(args.outbox, records, oracle, spend, {rule.name: rule.kind for rule in rules}, late)
    print(
        json.dumps(
            {
                "money": asdict(money) | {"ok": money.ok},
                "emails": asdict(emails) | {"ok": emails.ok},
                "day_spend": {day: str(value) for day, value in spend.items()},
            },
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
