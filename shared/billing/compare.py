"""One model account's UTC day: our figures against the bill, per meter group, and the likely cause of a gap.

Each billed meter is placed in a group by its name (shared/costs/catalog_retail.py reads Foundry meter names:
"5.6 luna ShortCo Cd Inp Std Gl 1M Tokens" is gpt-5.6-luna's cached input): input (cache writes too: they are
prompt tokens, which we price as input), cached_input, output, provisioned (a PTU-hour meter), other (a meter
it cannot read). The gap (billed - ours) is split into the evidence the issue names, in money:
  unpriced   what Azure billed for the meters of models our price table has no price for (our cost 0);
  unmetered  tokens billed beyond the tokens the gateway metered, at our list price: calls that bypassed the
             gateway (the bypass alerts of that day say which) or token metrics lost on the way;
  cache      prompt tokens billed at the cached price that our metrics priced at the input price (only
             llm-emit-token-metric meters cached tokens, README "What the numbers rest on");
  price      the rest: the same tokens at another unit price than our list price (an enterprise discount, a
             negotiated or changed price).
The likely cause is the largest of them; the detail gives each, and the billed against the list unit price.
Stdlib only besides catalog_retail's meter reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from shared.billing.ours import OurDay
from shared.billing.outputs import (
    ALL,
    CACHE,
    GROUPS,
    NONE,
    PRICE,
    UNMETERED,
    UNPRICED,
    DayComparison,
    GroupFigures,
)
from shared.billing.query import BilledRow
from shared.costs.catalog_retail import parse_meter
from shared.money import format_money, from_micros

_PTU_METER = re.compile(r"Provisioned Managed .*Unit", re.IGNORECASE)
_KIND_GROUP = {"input": "input", "cache_write": "input", "cached_input": "cached_input", "output": "output"}
_ZERO = Decimal(0)


def meter_group(meter: str) -> tuple[str, str | None]:
    """(meter group, model or None) of a billed meter."""
    if _PTU_METER.search(meter):
        return "provisioned", None
    parsed = parse_meter(meter)
    if isinstance(parsed, str):
        return "other", None
    model, _, _, _, kind = parsed
    return _KIND_GROUP.get(kind, "other"), model


def compare_day(day: datetime, account: str, ours: OurDay | None, billed: Iterable[BilledRow]) -> DayComparison:
    """The day's comparison (status compared) with its groups, likely cause and evidence."""
    ours = ours or OurDay()
    billed = list(billed)
    currency = ours.currency or next((row.currency for row in billed if row.currency), "")
    billed_tokens = dict.fromkeys(GROUPS, 0)
    billed_cost = dict.fromkeys(GROUPS, _ZERO)
    unpriced_billed, unpriced_models = _ZERO, set()
    unpriced = {model.casefold() for model in ours.unpriced_models}
    for row in billed:
        group, model = meter_group(row.meter)
        billed_tokens[group] += row.tokens
        billed_cost[group] += row.cost
        if model is not None and model.casefold() in unpriced:
            unpriced_billed += row.cost
            unpriced_models.add(model)
            billed_tokens[group] -= row.tokens  # compared on their own, as our side keeps them out of the groups
    our_cost = {group: from_micros(ours.cost_micros.get(group, 0)) for group in GROUPS}
    our_tokens = {group: ours.tokens.get(group, 0) for group in GROUPS}
    groups = tuple(
        GroupFigures(group, our_cost[group], billed_cost[group], our_tokens[group], billed_tokens[group])
        for group in GROUPS
        if our_cost[group] or billed_cost[group] or our_tokens[group] or billed_tokens[group]
    )
    total_ours, total_billed = sum(our_cost.values(), _ZERO), sum(billed_cost.values(), _ZERO)
    effects, evidence = _effects(ours, our_cost, our_tokens, billed_cost, billed_tokens, unpriced_billed,
                                 unpriced_models, total_billed - total_ours, currency)  # fmt: skip
    largest = max(effects, key=lambda cause: abs(effects[cause]))
    cause = largest if total_billed != total_ours and effects[largest] else NONE
    detail = "; ".join(evidence)
    if cause:
        split = ", ".join(f"{name} {format_money(amount, currency)}" for name, amount in effects.items() if amount)
        detail = f"the gap by cause: {split}" + (f"; {detail}" if detail else "")
    return DayComparison(
        day=day, account=account, status="compared", currency=currency, our_cost=total_ours,
        billed_cost=total_billed, unpriced_tokens=ours.unpriced_tokens, cause=cause, detail=detail, groups=groups,
    )  # fmt: skip


def _effects(
    ours: OurDay,
    our_cost: dict[str, Decimal],
    our_tokens: dict[str, int],
    billed_cost: dict[str, Decimal],
    billed_tokens: dict[str, int],
    unpriced_billed: Decimal,
    unpriced_models: set[str],
    gap: Decimal,
    currency: str,
) -> tuple[dict[str, Decimal], list[str]]:
    evidence: list[str] = []
    price_in = our_cost["input"] / our_tokens["input"] if our_tokens["input"] else None
    price_out = our_cost["output"] / our_tokens["output"] if our_tokens["output"] else None
    prompt_billed = billed_tokens["input"] + billed_tokens["cached_input"]
    prompt_ours = our_tokens["input"] + our_tokens["cached_input"]
    unmetered = _ZERO
    if price_in is not None:
        unmetered += (prompt_billed - prompt_ours) * price_in
    if price_out is not None:
        unmetered += (billed_tokens["output"] - our_tokens["output"]) * price_out
    cache = _ZERO
    shifted = billed_tokens["cached_input"] - our_tokens["cached_input"]
    if shifted and price_in is not None:
        cached_price = (
            our_cost["cached_input"] / our_tokens["cached_input"]
            if our_tokens["cached_input"]
            else billed_cost["cached_input"] / billed_tokens["cached_input"]
            if billed_tokens["cached_input"]
            else price_in
        )
        cache = shifted * (cached_price - price_in)
    effects = {UNPRICED: unpriced_billed, UNMETERED: unmetered, CACHE: cache}
    effects[PRICE] = gap - sum(effects.values(), _ZERO)
    effects = {name: amount.quantize(Decimal("0.000001")) for name, amount in effects.items()}
    if ours.unpriced_tokens:
        evidence.append(
            f"{ours.unpriced_tokens:,} tokens of {', '.join(sorted(ours.unpriced_models))} had no price in our table "
            f"that day; Azure billed {format_money(unpriced_billed, currency)} for "
            f"{', '.join(sorted(unpriced_models)) or 'them'}"
        )
    extra_tokens = prompt_billed + billed_tokens["output"] - prompt_ours - our_tokens["output"]
    if extra_tokens:
        evidence.append(
            f"Azure billed {extra_tokens:+,} tokens against what the gateway metered (prompt "
            f"{prompt_billed - prompt_ours:+,}, output {billed_tokens['output'] - our_tokens['output']:+,})"
            + (
                ": calls that bypassed the gateway (see that day's bypass alerts) or token metrics lost"
                if extra_tokens > 0
                else ": the gateway metered tokens Azure did not bill"
            )
        )  # fmt: skip
    if shifted:
        evidence.append(
            f"Azure billed {billed_tokens['cached_input']:,} prompt tokens at the cached price, the gateway's metrics "
            f"metered {our_tokens['cached_input']:,} cached ({ours.cache_unmetered_tokens:,} prompt tokens priced at "
            "input: no cache discount metered)"
        )
    for group in ("input", "cached_input", "output"):
        if our_tokens[group] and billed_tokens[group]:
            listed = our_cost[group] * 1_000_000 / our_tokens[group]
            charged = billed_cost[group] * 1_000_000 / billed_tokens[group]
            if listed and abs(charged - listed) * 1000 > listed:  # more than 0.1% apart
                evidence.append(
                    f"{group} billed {format_money(charged, currency)} per 1M tokens against our list price "
                    f"{format_money(listed, currency)} ({(charged - listed) * 100 / listed:+.1f}%)"
                )
    return effects, evidence


def all_group(comparison: DayComparison) -> GroupFigures:
    """The account's whole day as one group (the row alerts and the workbook read first)."""
    return GroupFigures(
        ALL, comparison.our_cost, comparison.billed_cost,
        sum(group.our_tokens for group in comparison.groups), sum(group.billed_tokens for group in comparison.groups),
    )  # fmt: skip
