"""Alert rules: the rules file (JSON, path in ALERT_RULES_FILE), parsed and checked at load.

A file is {"currency", "recipient_groups", "rules": [...]} (shared/alerts/alerts.sample.json is the
annotated sample). The file is read and checked with shared/json_input.py: every mistake is
reported with the file, line and field, all at once, so one round of fixes is enough:
  alerts.json:14: rules[0].amount: expected a number > 0, got -5

Rule kinds (see shared/alerts/evaluate.py for how each is evaluated):
  threshold       metric (cost|tokens|requests) over a period-to-date window (hour|day|month) for a
                  scope, with warning and/or critical levels;
  budget          an amount per day or month for a scope, percent thresholds (default 50/80/100)
                  and a period-end forecast from the spend rate so far;
  spike           the latest ended hour (or day) against the median of the same hour on the last
                  N days (or the last N days), with a minimum volume;
  unpriced        tokens of models with no price;
  no_metrics      no token metrics for N ended cost windows while synthetic traffic ran;
  reconciliation  synthetic traffic's ground truth vs the metered tokens of the same subscriptions,
                  users and deployments, over the last N ended cost windows: plain calls (APIM
                  meters their usage) within tolerance_percent (default 0: to the token), streamed
                  calls (APIM estimates them) within stream_tolerance_percent;
  bypass          per deployment, the model account's own token meters against the gateway's token metrics
                  in each final cost window of the costs run (shared/meters/): more tokens at the account
                  than tolerance_percent (default 1) of the gateway's exact tokens plus
                  stream_tolerance_percent (default 10) of its estimated ones, and at least min_tokens
                  (default 1000), is traffic that bypassed the gateway (or metrics lost on the way);
                  critical once the gateway missed critical_percent (default 20) of the account's tokens;
  bill_gap        per model account, each settled UTC day's actual cost in Cost Management against our cost for
                  its deployments (shared/billing/): a bill more than tolerance_percent (default 5) away from ours,
                  by at least min_amount (default 1, in the file's currency), fires; critical from critical_percent
                  (default 20). The email names the likely cause from the evidence.
Scopes: "all", "<dimension>:<value>" (one member) or "each:<dimension>" (every member on its own),
dimension one of subscription, user, model, api.
Recipient groups: a list of email addresses, or an object naming the group's channels:
  {"email": [addresses], "teams": "SETTING", "slack": "SETTING",
   "webhook": {"url_setting": "SETTING", "secret_setting": "SETTING"}}
A channel names the app setting that holds its webhook URL (a secret: a Key Vault reference in Azure), never
the URL itself; shared/config.py reads those settings at start and shared/channels/ delivers.
Stdlib only: a rules file can be checked (tests, tools) without loading pandas or the Azure SDKs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from shared.json_input import (
    REQUIRED,
    Check,
    Fields,
    Invalid,
    Problems,
    any_text,
    boolean,
    choice,
    email_address,
    number,
    parse_json_text,
    read_json_file,
    show,
    whole,
)

Metric = Literal["cost", "tokens", "requests"]
Period = Literal["hour", "day", "month"]
Dimension = Literal["subscription", "user", "model", "api"]
Kind = Literal["threshold", "budget", "spike", "unpriced", "no_metrics", "reconciliation", "bypass", "bill_gap"]
ChannelKind = Literal["teams", "slack", "webhook"]

METRICS: tuple[Metric, ...] = ("cost", "tokens", "requests")
PERIODS: tuple[Period, ...] = ("hour", "day", "month")
DIMENSIONS: tuple[Dimension, ...] = ("subscription", "user", "model", "api")
KINDS: tuple[Kind, ...] = (
    "threshold", "budget", "spike", "unpriced", "no_metrics", "reconciliation", "bypass", "bill_gap",
)  # fmt: skip
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("teams", "slack", "webhook")
DEFAULT_BUDGET_PERCENTS = (Decimal(50), Decimal(80), Decimal(100))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
# App setting names as the Functions host takes them from the environment: letters, digits and underscores.
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class Scope:
    dimension: Dimension | None  # None: all traffic
    value: str | None = None  # one member; None with a dimension: each member on its own

    @property
    def each(self) -> bool:
        return self.dimension is not None and self.value is None

    def describe(self) -> str:
        if self.dimension is None:
            return "all traffic"
        return f"each {self.dimension}" if self.value is None else f"{self.dimension} {self.value}"


@dataclass(frozen=True)
class Rule:
    name: str
    kind: Kind
    recipients: str  # a recipient group name
    scope: Scope = Scope(None)
    metric: Metric = "cost"
    period: Period = "day"
    warning: Decimal | None = None  # threshold: value; unpriced: tokens; spike: factor over baseline
    critical: Decimal | None = None
    amount: Decimal | None = None  # budget amount in the file's currency
    percents: tuple[Decimal, ...] = DEFAULT_BUDGET_PERCENTS
    forecast: bool = True
    forecast_min_elapsed_percent: Decimal = Decimal(10)  # no month-end forecast from the first minutes
    baseline_days: int = 7
    min_value: Decimal = Decimal(0)  # spike: the latest window's minimum volume to page anyone
    windows: int = 2  # no_metrics / reconciliation: how many ended cost windows
    grace_minutes: int = 15  # no_metrics / reconciliation: ingestion delay allowance
    # reconciliation: how far metered tokens may be from the ground truth. Plain calls are metered
    # from the response's usage, so they match to the token; streamed calls are APIM's estimates
    # ("When stream is set to true ... token metrics are estimated", learn.microsoft.com/azure/
    # api-management/azure-openai-emit-token-metric-policy). Microsoft publishes no accuracy for
    # the estimate: 10% is our default, to be tuned against a real gateway.
    tolerance_percent: Decimal = Decimal(0)
    stream_tolerance_percent: Decimal = Decimal(10)
    min_tokens: int = 1000  # reconciliation: less ground truth than this is not compared; bypass: smallest gap
    # bypass: critical once the gateway missed this share of the tokens the account processed.
    critical_percent: Decimal = Decimal(20)
    min_amount: Decimal = Decimal(1)  # bill_gap: the smallest gap in money worth a mail
    description: str = ""


@dataclass(frozen=True)
class ChannelTarget:
    """A recipient group's Teams, Slack or generic webhook: the app settings that hold its URL (and, for the
    generic webhook, its signing secret), and where the rules file names them (for error messages)."""

    kind: ChannelKind
    url_setting: str
    secret_setting: str | None = None  # webhook only: the Standard Webhooks signing secret ("whsec_...")
    where: str = ""  # "alerts.json:7: recipient_groups.finops.teams"


@dataclass(frozen=True)
class RuleSet:
    source: str  # the file, for "where to change it" in the email
    currency: str
    recipient_groups: Mapping[str, tuple[str, ...]]  # email addresses per group; () for a group without email
    rules: tuple[Rule, ...] = field(default_factory=tuple)
    channels: Mapping[str, tuple[ChannelTarget, ...]] = field(default_factory=dict)  # per group, beside email

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def channel_settings(self) -> list[str]:
        """The app settings the channels name (webhook URLs, signing secrets), each once, in file order."""
        names = [
            name
            for targets in self.channels.values()
            for target in targets
            for name in (target.url_setting, target.secret_setting)
            if name
        ]
        return list(dict.fromkeys(names))


_WHAT = "alert rules"


def load_rules(path: Path) -> RuleSet:
    document = read_json_file(path, _WHAT)
    return _rule_set(document.root, document.source)


def parse_rules(text: str, *, source: str) -> RuleSet:
    return _rule_set(parse_json_text(text, source, _WHAT).root, source)


def _rule_set(document: Any, source: str) -> RuleSet:
    problems = Problems(source, _WHAT)
    top = problems.fields(document, "")
    if not isinstance(document, Mapping):
        problems.fail(
            None, "", f"expected a JSON object with currency, recipient_groups and rules, got {show(document)}"
        )
    # "reports": the chargeback reports' section, read and checked by shared/reports/plan.py.
    top.unknown({"currency", "recipient_groups", "rules", "reports", "_comment", "note"})
    currency = top.get("currency", _currency, "USD", fallback="USD")
    groups, channels = _groups(top)
    rules: list[Rule] = []
    first_with_name: dict[str, str] = {}
    for path, line, raw in top.items("rules", expected="a non-empty list of rules"):
        if not isinstance(raw, Mapping):
            problems.add(line, path, f"expected a JSON object, got {show(raw)}")
            continue
        before = len(problems.items)
        fields = problems.fields(raw, path, line)
        rule = _rule(fields, groups)
        if rule is not None and rule.name in first_with_name:
            fields.problem("name", f"{show(rule.name)} is used by {first_with_name[rule.name]}; names must be unique")
        elif rule is not None and len(problems.items) == before:
            first_with_name[rule.name] = path
            rules.append(rule)
    problems.raise_if_any()
    return RuleSet(source=source, currency=currency, recipient_groups=groups, rules=tuple(rules), channels=channels)


_currency: Check[str] = Check(
    "an ISO 4217 code such as USD",
    lambda value: value if isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value) else None,
)
# fullmatch: `$` also matches before a final newline, which let "ops@example.com\n" end the To header.
_address = email_address
_name: Check[str] = Check(
    "a name of letters, digits, '.', '_' or '-' (at most 80)",
    lambda value: value if isinstance(value, str) and _NAME.fullmatch(value) else None,
)
# How far back a rule may look: Log Analytics keeps data queryable for at most two years (interactive
# retention up to 730 days, learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure), and a
# longer look-back ran the query range past year 1 (OverflowError) instead of being refused here.
MAX_LOOKBACK_DAYS = 730


_GROUP = 'an object {"group": ["address", ...]} or {"group": {"email": [...], "teams": "SETTING", ...}}'
_SETTING_EXPECTED = "the name of an app setting (letters, digits, '_') that holds the URL, never the URL itself"


def _setting(fields: Fields, key: str) -> str | None:
    """The app setting a channel field names; a problem, without the value (it may be a webhook URL: a secret), if
    it is not a setting name."""
    fields.used.add(key)
    value = fields.raw.get(key)
    if isinstance(value, str) and _SETTING_NAME.fullmatch(value):
        return value
    if key not in fields.raw:
        fields.problems.add(fields.line, fields.path_of(key), f"missing; expected {_SETTING_EXPECTED}")
    else:
        fields.problem(key, f"expected {_SETTING_EXPECTED}, got {_kind_of(value)} (not shown)")
    return None


def _kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "a URL" if "://" in value else "text that is not a setting name"
    kinds = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", list: "a list"}
    return kinds.get(type(value), "an object")


def _groups(top: Fields) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[ChannelTarget, ...]]]:
    raw = top.object("recipient_groups", expected=_GROUP)
    if raw is None:
        return {}, {}
    if not raw.raw:
        top.bad("recipient_groups", _GROUP)
    groups: dict[str, tuple[str, ...]] = {}
    channels: dict[str, tuple[ChannelTarget, ...]] = {}
    for name in raw.raw:
        before = len(top.problems.items)
        if isinstance(raw.raw[name], Mapping):
            addresses, targets = _channel_group(raw.object(name), top.problems.source)
        else:
            items = raw.items(name, expected="a non-empty list of email addresses, or an object naming channels")
            addresses = [str(top.problems.value(path, line, value, _address)) for path, line, value in items]
            targets = []
        if (addresses or targets) and len(top.problems.items) == before:
            groups[str(name)] = tuple(str(address) for address in addresses)
            channels[str(name)] = tuple(targets)
    return groups, channels


def _channel_group(group: Fields | None, source: str) -> tuple[list[str], list[ChannelTarget]]:
    """One group in the object form: its email addresses and its webhook channels, each at least once."""
    if group is None:
        return [], []
    before = len(group.problems.items)
    group.unknown({"email", *CHANNEL_KINDS, "_comment"}, "a recipient group (its channels)")
    addresses: list[str] = []
    if "email" in group:
        items = group.items("email", expected="a non-empty list of email addresses")
        addresses = [str(group.problems.value(path, line, value, _address)) for path, line, value in items]
    targets: list[ChannelTarget] = []
    for kind in CHANNEL_KINDS:
        if kind not in group:
            continue
        where = f"{source}:{group.line_of(kind)}: {group.path_of(kind)}"
        if kind == "webhook":
            hook = group.object(kind, expected='{"url_setting": "SETTING", "secret_setting": "SETTING"}')
            if hook is None:
                continue
            hook.unknown({"url_setting", "secret_setting", "_comment"}, "a webhook channel")
            url = _setting(hook, "url_setting")
            secret = _setting(hook, "secret_setting")
            if url is not None and secret is not None:
                targets.append(ChannelTarget(kind, url, secret, where))
        else:
            url = _setting(group, kind)
            if url is not None:
                targets.append(ChannelTarget(kind, url, None, where))
    if not addresses and not targets and len(group.problems.items) == before:
        group.problems.add(group.line, group.path, "expected at least one channel: email, " + ", ".join(CHANNEL_KINDS))
    return addresses, targets


def _read_scope(value: Any) -> Scope | None:
    if value == "all":
        return Scope(None)
    if isinstance(value, str) and ":" in value:
        head, _, tail = value.partition(":")
        if head == "each" and tail in DIMENSIONS:
            return Scope(tail)
        if head in DIMENSIONS and tail:
            return Scope(head, tail)
    return None


_scope = Check(
    '"all", "<dimension>:<value>" or "each:<dimension>", dimension one of ' + ", ".join(DIMENSIONS), _read_scope
)


_POSITIVE = number(above=0)


def _rule(f: Fields, groups: Mapping[str, tuple[str, ...]]) -> Rule | None:
    before = len(f.problems.items)
    name = f.get("name", _name)
    kind = f.get("kind", choice(KINDS))
    default_group = "default" if "default" in groups else (next(iter(groups)) if len(groups) == 1 else REQUIRED)
    recipients = f.get("recipients", any_text, default_group, expected="the name of a recipient group")
    if recipients is not None and groups and recipients not in groups:
        f.bad("recipients", "one of the recipient_groups: " + ", ".join(sorted(groups)))
    values: dict[str, Any] = {"description": f.get("description", any_text, "")}
    if kind in ("threshold", "budget", "spike", "unpriced"):
        values["scope"] = f.get("scope", _scope, Scope("model") if kind == "unpriced" else Scope(None))
    if kind in ("threshold", "spike"):
        values["metric"] = f.get("metric", choice(METRICS))
    if kind == "threshold":
        values["period"] = f.get("window", choice(PERIODS))
        _levels(f, values, _POSITIVE)
    elif kind == "budget":
        values["period"] = f.get("period", choice(("day", "month")), "month")
        values["amount"] = f.get("amount", _POSITIVE)
        percents = f.get("thresholds_percent", _percents, DEFAULT_BUDGET_PERCENTS)
        values["percents"] = percents or DEFAULT_BUDGET_PERCENTS
        values["forecast"] = f.get("forecast", boolean, True)
        values["forecast_min_elapsed_percent"] = f.get(
            "forecast_min_elapsed_percent", number(minimum=0), Decimal(10), expected="a percentage, 0-100"
        )
    elif kind == "spike":
        values["period"] = f.get("window", choice(("hour", "day")), "hour")
        values["baseline_days"] = f.get(
            "baseline_days", whole(minimum=1, maximum=MAX_LOOKBACK_DAYS), 7,
            expected=f"a whole number of days from 1 to {MAX_LOOKBACK_DAYS}",
        )  # fmt: skip
        values["min_value"] = f.get("min_value", _POSITIVE, expected="a number > 0 (minimum volume)")
        _levels(f, values, number(above=1), "a factor over the baseline > 1", prefix="factor_")
    elif kind == "unpriced":
        values["period"] = f.get("window", choice(PERIODS), "day")
        values["metric"] = "tokens"
        _levels(f, values, _POSITIVE, "a number of tokens > 0", default_warning=Decimal(1))
    elif kind in ("no_metrics", "reconciliation"):
        # Day-wide windows at the widest (COST_WINDOW_MINUTES divides a day): at most MAX_LOOKBACK_DAYS of them.
        windows = whole(minimum=1, maximum=MAX_LOOKBACK_DAYS)
        values["windows"] = f.get("windows", windows, 2 if kind == "no_metrics" else 3)
        values["grace_minutes"] = f.get(
            "grace_minutes", whole(minimum=0, maximum=MAX_LOOKBACK_DAYS * 24 * 60), 15,
            expected=f"a whole number of minutes from 0 to {MAX_LOOKBACK_DAYS * 24 * 60} ({MAX_LOOKBACK_DAYS} days)",
        )  # fmt: skip
        if kind == "reconciliation":
            values["tolerance_percent"] = f.get("tolerance_percent", number(minimum=0), Decimal(0))
            values["stream_tolerance_percent"] = f.get("stream_tolerance_percent", _POSITIVE, Decimal(10))
            values["min_tokens"] = f.get("min_tokens", whole(minimum=0), 1000)
    elif kind == "bypass":
        # Plain calls: APIM reads the response's usage, the account meters the same call, so they agree to
        # the token unless a call was processed but not metered on the way (a retry behind the gateway, a
        # client gone before the answer): 1% allows for that. Streamed calls are APIM's estimates ("When
        # stream is set to true ... token metrics are estimated", learn.microsoft.com/azure/api-management/
        # azure-openai-emit-token-metric-policy), with no published accuracy: 10%, as the reconciliation rule.
        values["tolerance_percent"] = f.get("tolerance_percent", number(minimum=0), Decimal(1))
        values["stream_tolerance_percent"] = f.get("stream_tolerance_percent", number(minimum=0), Decimal(10))
        values["min_tokens"] = f.get("min_tokens", whole(minimum=0), 1000)
        values["critical_percent"] = f.get(
            "critical_percent", number(above=0), Decimal(20), expected="a percentage > 0"
        )
    elif kind == "bill_gap":
        # Our cost is list price x metered tokens; Azure's is what it charges: a few percent apart is normal (rounding
        # per meter, estimated streams). 5% / 20% are our defaults; the acceptance is a bill 15% above ours.
        values["tolerance_percent"] = f.get("tolerance_percent", number(minimum=0), Decimal(5))
        values["critical_percent"] = f.get(
            "critical_percent", number(above=0), Decimal(20), expected="a percentage > 0"
        )
        values["min_amount"] = f.get("min_amount", number(minimum=0), Decimal(1), expected="an amount >= 0")
    f.unknown(f.used | {"kind", "name"}, f"a {kind or 'rule'} rule")
    if len(f.problems.items) > before or name is None or kind is None:
        return None
    return Rule(name=name, kind=kind, recipients=recipients, **{k: v for k, v in values.items() if v is not None})


def _levels(
    f: Fields,
    values: dict[str, Any],
    check: Callable[[Any], Decimal],
    expected: str | None = None,
    *,
    prefix: str = "",
    default_warning: Decimal | None = None,
) -> None:
    warning = f.get(f"{prefix}warning", check, default_warning, expected=expected)
    critical = f.get(f"{prefix}critical", check, None, expected=expected)
    if f"{prefix}warning" not in f and f"{prefix}critical" not in f and default_warning is None:
        f.problems.add(f.line, f.path, f"give at least one level: {prefix}warning or {prefix}critical")
    if warning is not None and critical is not None and warning >= critical:
        f.problem(f"{prefix}warning", f"{warning} is not below {prefix}critical {critical}; levels must increase")
    values["warning"], values["critical"] = warning, critical


def _read_percents(value: Any) -> tuple[Decimal, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    try:
        numbers = tuple(_POSITIVE(item) for item in value)
    except Invalid:
        return None
    return numbers if list(numbers) == sorted(set(numbers)) else None


_percents = Check("increasing percentages > 0", _read_percents)
