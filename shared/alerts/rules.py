"""Alert rules: the rules file (JSON, path in ALERT_RULES_FILE), parsed and checked at load.

A file is {"currency", "recipient_groups", "rules": [...]} (shared/alerts/alerts.sample.json is the
annotated sample). Every mistake is reported with the file, the rule (its name, or its index when
it has none) and the field, all at once, so one round of fixes is enough:
  alerts.json: rule "demo-budget" (#1): field "amount": -5 is invalid; expected a number > 0

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
                  calls (APIM estimates them) within stream_tolerance_percent.
Scopes: "all", "<dimension>:<value>" (one member) or "each:<dimension>" (every member on its own),
dimension one of subscription, user, model, api.
Stdlib only: function_app may import it at start to fail fast on a bad file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

Metric = Literal["cost", "tokens", "requests"]
Period = Literal["hour", "day", "month"]
Dimension = Literal["subscription", "user", "model", "api"]
Kind = Literal["threshold", "budget", "spike", "unpriced", "no_metrics", "reconciliation"]

METRICS: tuple[Metric, ...] = ("cost", "tokens", "requests")
PERIODS: tuple[Period, ...] = ("hour", "day", "month")
DIMENSIONS: tuple[Dimension, ...] = ("subscription", "user", "model", "api")
KINDS: tuple[Kind, ...] = ("threshold", "budget", "spike", "unpriced", "no_metrics", "reconciliation")
DEFAULT_BUDGET_PERCENTS = (Decimal(50), Decimal(80), Decimal(100))
# A deliberately strict address check: one @, no spaces or angle brackets (header injection).
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class AlertRulesError(ValueError):
    """The rules file cannot be used; the message names the file, each bad rule and field."""


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
    min_tokens: int = 1000  # reconciliation: less ground truth than this is not compared
    description: str = ""


@dataclass(frozen=True)
class RuleSet:
    source: str  # the file, for "where to change it" in the email
    currency: str
    recipient_groups: Mapping[str, tuple[str, ...]]
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


def load_rules(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AlertRulesError(f"{path}: cannot read the alert rules file: {error.strerror or error}") from None
    return parse_rules(text, source=str(path))


def parse_rules(text: str, *, source: str) -> RuleSet:
    try:
        document = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        where = f"{source}: line {error.lineno} column {error.colno}"
        raise AlertRulesError(f"{where}: not valid JSON: {error.msg}") from None
    problems: list[str] = []
    if not isinstance(document, dict):
        raise AlertRulesError(f"{source}: expected a JSON object with currency, recipient_groups and rules")
    currency = document.get("currency", "USD")
    if not (isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)):
        problems.append(f'field "currency": {currency!r} is invalid; expected an ISO 4217 code such as USD')
    groups = _groups(document.get("recipient_groups"), problems)
    raw_rules = document.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, list) or not raw_rules:
        problems.append('field "rules": expected a non-empty list of rules')
        raw_rules = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        label = f"rule #{index}"
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            label = f'rule "{raw["name"]}" (#{index})'
        rule_problems: list[str] = []
        rule = _rule(raw, groups, rule_problems)
        if rule is not None and rule.name in seen:
            rule_problems.append(f'field "name": {rule.name!r} is used by an earlier rule; names must be unique')
        problems.extend(f"{label}: {problem}" for problem in rule_problems)
        if rule is not None and not rule_problems:
            seen.add(rule.name)
            rules.append(rule)
    if problems:
        raise AlertRulesError(f"{source}: invalid alert rules:\n  " + "\n  ".join(problems))
    return RuleSet(source=source, currency=str(currency), recipient_groups=groups, rules=tuple(rules))


def _groups(raw: Any, problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict) or not raw:
        problems.append('field "recipient_groups": expected an object {"group": ["address", ...]}')
        return {}
    groups: dict[str, tuple[str, ...]] = {}
    for name, addresses in raw.items():
        where = f'field "recipient_groups.{name}"'
        if not isinstance(addresses, list) or not addresses:
            problems.append(f"{where}: expected a non-empty list of email addresses")
            continue
        bad = [a for a in addresses if not (isinstance(a, str) and _ADDRESS.match(a))]
        if bad:
            problems.append(f"{where}: {bad[0]!r} is not a valid email address")
            continue
        groups[str(name)] = tuple(addresses)
    return groups


class _Fields:
    """Reads one rule object; each bad field becomes one problem line and a default value."""

    def __init__(self, raw: Mapping[str, Any], problems: list[str]) -> None:
        self.raw = raw
        self.problems = problems
        self.used: set[str] = set()

    def bad(self, name: str, expected: str) -> None:
        self.problems.append(f'field "{name}": {self.raw.get(name)!r} is invalid; expected {expected}')

    def get(self, name: str, parse: Callable[[Any], Any], default: Any, expected: str) -> Any:
        self.used.add(name)
        if name not in self.raw:
            if default is _REQUIRED:
                self.problems.append(f'field "{name}" is missing; expected {expected}')
                return None
            return default
        try:
            return parse(self.raw[name])
        except (TypeError, ValueError, InvalidOperation):
            self.bad(name, expected)
            return None if default is _REQUIRED else default


_REQUIRED: Any = object()


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in options:
            raise ValueError(value)
        return str(value)

    return parse


def _number(minimum: Decimal, *, inclusive: bool = False) -> Callable[[Any], Decimal]:
    def parse(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise TypeError(value)
        number = Decimal(value)
        if not number.is_finite() or number < minimum or (number == minimum and not inclusive):
            raise ValueError(value)
        return number

    return parse


def _whole(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(value)
        return value

    return parse


def _scope(value: Any) -> Scope:
    if value == "all":
        return Scope(None)
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(value)
    head, _, tail = value.partition(":")
    if head == "each" and tail in DIMENSIONS:
        return Scope(tail)
    if head in DIMENSIONS and tail:
        return Scope(head, tail)
    raise ValueError(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


_SCOPE_EXPECTED = '"all", "<dimension>:<value>" or "each:<dimension>", dimension one of ' + ", ".join(DIMENSIONS)
_POSITIVE = "a number > 0"


def _rule(raw: Any, groups: Mapping[str, tuple[str, ...]], problems: list[str]) -> Rule | None:
    if not isinstance(raw, dict):
        problems.append("expected a JSON object")
        return None
    f = _Fields(raw, problems)
    name = f.get("name", _text, _REQUIRED, "a name of letters, digits, '.', '_' or '-' (at most 80)")
    if name is not None and not _NAME.match(name):
        f.bad("name", "a name of letters, digits, '.', '_' or '-' (at most 80)")
    kind = f.get("kind", _choice(KINDS), _REQUIRED, "one of " + ", ".join(KINDS))
    default_group = "default" if "default" in groups else (next(iter(groups)) if len(groups) == 1 else _REQUIRED)
    recipients = f.get("recipients", _text, default_group, "the name of a recipient group")
    if recipients is not None and groups and recipients not in groups:
        f.bad("recipients", "one of the recipient_groups: " + ", ".join(sorted(groups)))
    values: dict[str, Any] = {"description": f.get("description", _text, "", "a text")}
    if kind in ("threshold", "budget", "spike", "unpriced"):
        default_scope = Scope("model") if kind == "unpriced" else Scope(None)
        values["scope"] = f.get("scope", _scope, default_scope, _SCOPE_EXPECTED)
    if kind in ("threshold", "spike"):
        values["metric"] = f.get("metric", _choice(METRICS), _REQUIRED, "one of " + ", ".join(METRICS))
    if kind == "threshold":
        values["period"] = f.get("window", _choice(PERIODS), _REQUIRED, "one of " + ", ".join(PERIODS))
        _levels(f, values, _number(Decimal(0)), _POSITIVE)
    elif kind == "budget":
        values["period"] = f.get("period", _choice(("day", "month")), "month", "day or month")
        values["amount"] = f.get("amount", _number(Decimal(0)), _REQUIRED, _POSITIVE)
        percents = f.get("thresholds_percent", _percents, DEFAULT_BUDGET_PERCENTS, "increasing percentages > 0")
        values["percents"] = percents or DEFAULT_BUDGET_PERCENTS
        values["forecast"] = f.get("forecast", _bool, True, "true or false")
        values["forecast_min_elapsed_percent"] = f.get(
            "forecast_min_elapsed_percent", _number(Decimal(0), inclusive=True), Decimal(10), "a percentage, 0-100"
        )
    elif kind == "spike":
        values["period"] = f.get("window", _choice(("hour", "day")), "hour", "hour or day")
        values["baseline_days"] = f.get("baseline_days", _whole(1), 7, "a whole number of days >= 1")
        values["min_value"] = f.get("min_value", _number(Decimal(0)), _REQUIRED, _POSITIVE + " (minimum volume)")
        _levels(f, values, _number(Decimal(1)), "a factor over the baseline > 1", prefix="factor_")
    elif kind == "unpriced":
        values["period"] = f.get("window", _choice(PERIODS), "day", "one of " + ", ".join(PERIODS))
        values["metric"] = "tokens"
        _levels(f, values, _number(Decimal(0)), "a number of tokens > 0", default_warning=Decimal(1))
    elif kind in ("no_metrics", "reconciliation"):
        values["windows"] = f.get("windows", _whole(1), 2 if kind == "no_metrics" else 3, "a whole number >= 1")
        values["grace_minutes"] = f.get("grace_minutes", _whole(0), 15, "a whole number of minutes >= 0")
        if kind == "reconciliation":
            values["tolerance_percent"] = f.get(
                "tolerance_percent", _number(Decimal(0), inclusive=True), Decimal(0), "a number >= 0"
            )
            values["stream_tolerance_percent"] = f.get(
                "stream_tolerance_percent", _number(Decimal(0)), Decimal(10), _POSITIVE
            )
            values["min_tokens"] = f.get("min_tokens", _whole(0), 1000, "a whole number >= 0")
    unknown = sorted(set(raw) - f.used - {"kind", "name"})
    for extra in unknown:
        problems.append(f'field "{extra}" is not a field of a {kind or "rule"} rule')
    if problems or name is None or kind is None:
        return None
    return Rule(name=name, kind=kind, recipients=recipients, **{k: v for k, v in values.items() if v is not None})


def _levels(
    f: _Fields,
    values: dict[str, Any],
    parse: Callable[[Any], Decimal],
    expected: str,
    *,
    prefix: str = "",
    default_warning: Decimal | None = None,
) -> None:
    warning = f.get(f"{prefix}warning", parse, default_warning, expected)
    critical = f.get(f"{prefix}critical", parse, None, expected)
    if f"{prefix}warning" not in f.raw and f"{prefix}critical" not in f.raw and default_warning is None:
        f.problems.append(f'fields "{prefix}warning" / "{prefix}critical": give at least one level')
    if warning is not None and critical is not None and warning >= critical:
        f.problems.append(
            f'field "{prefix}warning": {warning} is not below "{prefix}critical" {critical}; levels must increase'
        )
    values["warning"], values["critical"] = warning, critical


def _percents(value: Any) -> tuple[Decimal, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(value)
    numbers = tuple(_number(Decimal(0))(item) for item in value)
    if list(numbers) != sorted(set(numbers)):
        raise ValueError(value)
    return numbers
