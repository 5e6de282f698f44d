"""Fuzz: any JSON value at any field of the alert rules file loads into rules the alert run can use (its data
ranges, its email headers), or is refused as the documented InputFileError naming file, line and field."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from decimal import Decimal
from email.message import EmailMessage

from hypothesis import example, given
from hypothesis import strategies as st

from shared.alerts.data import ranges_for
from shared.alerts.rules import RuleSet, Scope, parse_rules
from shared.errors import InputFileError
from tests import ROOT
from tests.support.fuzz import Mutation, json_text, loads, mutations, refused_clearly

SAMPLE = loads((ROOT / "shared" / "alerts" / "alerts.sample.json").read_text(encoding="utf-8"))
SOURCE = "alerts.json"
NOW = datetime(2026, 11, 30, 10, 7, tzinfo=UTC)


def _load(document: object) -> RuleSet:
    return parse_rules(json_text(document), source=SOURCE)


def _addressed(recipients: tuple[str, ...]) -> None:
    """The group's addresses as the To header of an alert email: each one address, no other header."""
    message = EmailMessage()
    message["To"] = ", ".join(recipients)
    message.set_content("x")
    received = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert list(received.keys()) == ["To", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    assert [address.addr_spec for address in received["To"].addresses] == list(recipients)


@given(mutations(SAMPLE))
@example(Mutation("replace", ("recipient_groups", "platform", 0), "ops@example.com\n"))  # a To line break
@example(Mutation("replace", ("rules", 2, "name"), "hourly\n"))
@example(Mutation("replace", ("rules", 4, "baseline_days"), 10**6))  # a baseline before year 1
@example(Mutation("replace", ("rules", 6, "windows"), 10**12))
@example(Mutation("replace", ("rules", 7, "grace_minutes"), 10**12))
def test_any_value_at_any_field_loads_usable_rules_or_is_refused_by_field(mutation: Mutation) -> None:
    try:
        rules = _load(mutation.apply(SAMPLE))
    except InputFileError as error:
        refused_clearly(error, SOURCE)
        return
    for recipients in rules.recipient_groups.values():
        _addressed(recipients)
    for rule in rules.rules:
        assert "\n" not in rule.name and rule.recipients in rules.recipient_groups
    ranges = ranges_for(rules.rules, NOW, 60)  # what the alert run queries
    assert ranges.start <= ranges.detail_from <= NOW < ranges.end


_amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2)


@given(
    st.lists(st.from_regex(r"[a-z0-9.+-]{1,20}@[a-z0-9]{1,10}\.(com|org|example)", fullmatch=True), min_size=1),
    st.sampled_from(["all", "each:user", "subscription:team-a", "model:gpt-4.1", "user:x\"'<>|;"]),
    _amounts,
    st.lists(st.integers(1, 300), min_size=1, max_size=5, unique=True).map(sorted),
    st.integers(1, 730),
)
def test_valid_rules_round_trip(
    addresses: list[str], scope: str, amount: Decimal, percents: list[int], baseline_days: int
) -> None:
    document = {
        "currency": "EUR",
        "recipient_groups": {"team": addresses},
        "rules": [
            {"name": "budget", "kind": "budget", "scope": scope, "amount": float(amount),
             "thresholds_percent": percents},
            {"name": "spike", "kind": "spike", "metric": "tokens", "baseline_days": baseline_days,
             "factor_warning": 2, "min_value": 1},
        ],
    }  # fmt: skip
    rules = _load(document)
    assert rules.currency == "EUR" and rules.recipient_groups == {"team": tuple(addresses)}
    budget, spike = rules.rules
    dimension, _, member = scope.partition(":")
    expected_scope = {"all": Scope(None), "each": Scope("user")}.get(dimension) or Scope(dimension, member)
    assert budget.scope == expected_scope
    assert budget.amount == Decimal(str(float(amount))) and budget.percents == tuple(Decimal(p) for p in percents)
    assert spike.baseline_days == baseline_days and spike.warning == 2 and spike.recipients == "team"
