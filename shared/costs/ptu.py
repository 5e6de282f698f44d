"""Provisioned (PTU) deployments: each window's PTU-hour cost, allocated to its callers by their token share.

Azure bills a provisioned deployment (catalog.PROVISIONED_TYPES: ProvisionedManaged, DataZoneProvisionedManaged,
GlobalProvisionedManaged) by the hour for the PTUs deployed, called or not, partial hours by the minute; its tokens
cost nothing on their own (learn.microsoft.com/azure/ai-services/openai/how-to/provisioned-throughput-onboarding).
So for each provisioned deployment of the run's map and each planned window:

* window cost = capacity (PTUs: ARM sku.capacity, or a deployments.json entry's "capacity") x the PTU-hour price
  in force at the window's start (PriceTable.ptu_hour_price: the model's own, else model "*") x billed minutes
  / 60, exact, rounded once (half to even, as shared/money.py) to micro-units. Billed minutes are the window's,
  counted from the deployment's creation (ARM systemData.createdAt) when it was created inside the window (a
  started minute counts whole: Microsoft documents minute granularity, not its rounding); a window that ended
  before the creation bills nothing.
* That cost is split over the window's summary rows of the deployment by TotalTokens share (equal shares when
  every row has zero tokens) with the largest remainder method: each row gets the floor of its exact share in
  micro-units, and the micro-units left over go one each to the rows with the largest remainders, ties to the
  first by SubscriptionId, UserId, ApiId, Deployment. The rows add up to the window cost exactly, and a rerun
  splits it the same way whatever order the query returned (so the window's fingerprint does not change).
  CostBasis "ptu_allocated".
* A window in which nobody called the deployment gets one "ptu_unused" row: Deployment and Model set,
  SubscriptionId, UserId and ApiId "" (outputs.NO_CONSUMER), no tokens, TotalCost = the window cost.
* Unpriced, flagged with the deployment's key and the reason, never $0: no PTU-hour price in force, no capacity,
  or calls in a window that ended before the deployment was created (a deleted and recreated deployment of the
  same name: the old one's capacity is unknown).

Assumed, for want of anything better to read:
* The capacity is the one ARM lists now, for every window of the run, recomputed ones included: the list keeps
  no history, so a window recomputed after a scale change is billed at the new capacity.
* Without createdAt (a deployments.json entry, or an ARM answer without systemData) the deployment is taken to
  exist through every planned window.
* A deployment deleted since is no longer listed: its windows get no PTU cost, and its calls are priced as a
  deployment of unknown type (shared/costs/deployments.py).
* The open window carries its whole cost while provisional: the deployment bills the hour unless deleted before
  its end, and later runs recompute the window.
* The price is the table's hourly rate: a reservation's effective hourly rate goes in the price table as the
  type's model "*" row (README, Provisioned (PTU) deployments).

Import this module only inside a run: it imports pandas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from shared.costs.catalog import PROVISIONED_TYPES
from shared.costs.deployments import Deployment, DeploymentMap
from shared.costs.price_table import PriceTable
from shared.money import MICROS_PER_UNIT
from shared.windows import Window

ALLOCATED = "ptu_allocated"
UNUSED = "ptu_unused"
# The row key columns that break ties between equal remainders, in this order (shared/costs/query.KEY_COLUMNS).
_TIE_BREAK = ("SubscriptionId", "UserId", "ApiId", "Deployment")
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class WindowCost:
    """What one provisioned deployment costs in one window, or why it cannot be priced."""

    deployment: Deployment
    window: Window
    billed_minutes: int  # 0: the window ended before the deployment was created
    micros: int | None  # None: unpriced (see reason)
    currency: str
    reason: str  # "" when priced

    @property
    def unpriced_key(self) -> str:
        """'gpt-4o (version 2024-11-20, GlobalProvisionedManaged): no PTU-hour price'"""
        return f"{self.deployment.price_key()}: {self.reason}"


def billed_minutes(window: Window, created_at: datetime | None) -> int:
    """Minutes of the window the deployment existed in (a started minute counts whole)."""
    start = window.start if created_at is None else max(window.start, created_at)
    if start >= window.end:
        return 0
    return math.ceil((window.end - start) / _MINUTE)


def window_cost(deployment: Deployment, window: Window, prices: PriceTable) -> WindowCost:
    """The provisioned deployment's cost in the window, rounded once to micro-units (rules in the module docstring)."""
    if deployment.sku not in PROVISIONED_TYPES:
        raise ValueError(f"{deployment.price_key()} is not a provisioned deployment")
    minutes = billed_minutes(window, deployment.created_at)
    if minutes == 0:
        created = f"{deployment.created_at:%Y-%m-%dT%H:%M:%SZ}"
        return WindowCost(deployment, window, 0, None, "", f"called before its creation ({created})")
    if not deployment.capacity or deployment.capacity < 1:
        return WindowCost(deployment, window, minutes, None, "", "no capacity (PTUs) known")
    price = prices.ptu_hour_price(deployment.model, window.start, deployment.sku)
    if price is None:
        return WindowCost(deployment, window, minutes, None, "", "no PTU-hour price")
    exact = Fraction(price.price_per_ptu_hour) * deployment.capacity * minutes * MICROS_PER_UNIT / 60
    # round() of a Fraction is exact and rounds half to even: the one rounding shared/money.py allows.
    return WindowCost(deployment, window, minutes, round(exact), price.currency, "")


@dataclass(frozen=True)
class ProvisionedCosts:
    """The provisioned part of a priced frame (shared/costs/frame.py puts it in its columns)."""

    positions: npt.NDArray[np.intp]  # frame rows given a share of their window's cost, ...
    micros: npt.NDArray[np.int64]  # ... that share (TotalCost micro-units), ...
    currencies: npt.NDArray[np.object_]  # ... and its currency (other rows of provisioned deployments: unpriced)
    # One row per window nobody called a priced deployment in: WindowStart, Deployment, Model, DeploymentType,
    # TotalCostMicros, Currency.
    unused: pd.DataFrame
    unpriced: tuple[str, ...]  # each "price key: reason"


def price_provisioned(
    frame: pd.DataFrame, prices: PriceTable, deployments: DeploymentMap, windows: Sequence[Window]
) -> ProvisionedCosts:
    """Each provisioned deployment's cost per window, split over the frame's rows of it (module docstring).

    `frame` has WindowStart, Deployment and the key and token columns (shared/costs/query.py); `windows` are the
    run's planned windows. A row of a provisioned deployment outside them is a caller's mistake: ValueError.
    """
    provisioned = [entry for entry in deployments.entries if entry.sku in PROVISIONED_TYPES]
    costs = [window_cost(entry, window, prices) for entry in provisioned for window in windows]
    cost_index = pd.MultiIndex.from_arrays(
        [
            pd.DatetimeIndex([pd.Timestamp(cost.window.start) for cost in costs], tz="UTC"),
            pd.Index([cost.deployment.name for cost in costs], dtype=object),
        ]
    )
    # Rows name a deployment as the gateway saw it; the map matches names ignoring case, so rows of "PTU-a"
    # and "ptu-a" share the one deployment's cost.
    names = frame["Deployment"].unique() if len(frame) else []
    owners = {name: entry.name for name in names if (entry := deployments.deployment(name)) in provisioned}
    owner = frame["Deployment"].map(owners)
    positions = np.flatnonzero(owner.notna().to_numpy())
    found = np.zeros(0, dtype=np.intp)  # per row of a provisioned deployment, its WindowCost in costs
    if len(positions):
        keys = [pd.DatetimeIndex(frame["WindowStart"].iloc[positions]), owner.iloc[positions]]
        found = cost_index.get_indexer(pd.MultiIndex.from_arrays(keys))
    if (found < 0).any():
        first = positions[np.flatnonzero(found < 0)[0]]
        raise ValueError(
            f"usage of provisioned deployment {frame['Deployment'].iloc[first]} in the window starting "
            f"{frame['WindowStart'].iloc[first]}, which is not a planned window: its width (and cost) is unknown"
        )
    priced_cost = np.array([cost.micros is not None for cost in costs], dtype=bool)
    row_priced = priced_cost[found] if len(found) else np.zeros(0, dtype=bool)
    shares = _largest_remainder(frame.iloc[positions[row_priced]], found[row_priced], costs)
    unpriced = {cost.unpriced_key for cost in costs if cost.billed_minutes and cost.micros is None}
    unpriced.update(costs[index].unpriced_key for index in set(found[~row_priced].tolist()))
    called = set(found.tolist())
    unused = [cost for index, cost in enumerate(costs) if cost.micros is not None and index not in called]
    return ProvisionedCosts(
        positions=positions[row_priced],
        micros=shares,
        currencies=np.array([costs[index].currency for index in found[row_priced]], dtype=object),
        unused=pd.DataFrame(
            {
                "WindowStart": pd.DatetimeIndex([pd.Timestamp(cost.window.start) for cost in unused], tz="UTC"),
                "Deployment": [cost.deployment.name for cost in unused],
                "Model": [cost.deployment.model for cost in unused],
                "DeploymentType": [cost.deployment.sku or "" for cost in unused],
                "TotalCostMicros": np.array([cost.micros for cost in unused], dtype="int64"),
                "Currency": [cost.currency for cost in unused],
            }
        ),
        unpriced=tuple(sorted(unpriced)),
    )


def _largest_remainder(rows: pd.DataFrame, cost_of_row: npt.NDArray[np.intp], costs: Sequence[WindowCost]) -> Any:
    """Each row's share of its window cost (costs[cost_of_row[i]]) by TotalTokens, in micro-units summing exactly
    to each window cost: floors of the exact shares, then one micro-unit each to the largest remainders."""
    if not len(rows):
        return np.zeros(0, dtype="int64")
    group = pd.Series(cost_of_row)
    tokens = rows["TotalTokens"].to_numpy(dtype="int64")
    # Calls that metered no tokens still used the deployment: with no tokens to weigh by, shares are equal.
    weights = np.where(group.map(pd.Series(tokens).groupby(group).sum()).to_numpy() == 0, 1, tokens)
    window_micros = [costs[index].micros or 0 for index in cost_of_row]
    # cost x weight can pass 2^63 (a big reservation over a huge token count): then Python integers, as
    # frame._price_group does.
    dtype: Any = "int64" if max(window_micros) * int(weights.max()) < 2**63 else object
    totals = group.map(pd.Series(weights).groupby(group).sum()).to_numpy().astype(dtype)
    product = np.array(window_micros, dtype=dtype) * weights.astype(dtype)
    floors, remainders = product // totals, product % totals
    floor_sums = pd.Series(floors).groupby(group).sum()
    left = pd.Series([costs[index].micros or 0 for index in floor_sums.index], index=floor_sums.index) - floor_sums
    order = pd.DataFrame(
        {"group": cost_of_row, "remainder": remainders, **{name: rows[name].to_numpy() for name in _TIE_BREAK}}
    ).sort_values(["group", "remainder", *_TIE_BREAK], ascending=[True, False, True, True, True, True], kind="stable")
    rank = np.empty(len(order), dtype="int64")
    rank[order.index.to_numpy()] = order.groupby("group").cumcount().to_numpy()
    extra = rank < group.map(left).to_numpy().astype("int64")
    return (floors + extra).astype("int64")
