"""Which fault, if any, a request suffers: forced by header or drawn from seeded rates.

Header ``x-sim-fault: 429|500|stall|truncate|none`` forces the outcome of one request (``none``
shields it from configured random faults). The gateway forwards request headers, so tests can
force faults end to end.
"""

from __future__ import annotations

import enum
import random

from standins.simulator.config import FaultConfig

FAULT_HEADER = "x-sim-fault"


class Fault(enum.StrEnum):
    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    SERVER_ERROR = "500"
    # The stream starts, then goes silent until the client gives up (or stall_seconds pass).
    STALL = "stall"
    # The response is cut mid-body: no [DONE], no usage, connection closed.
    TRUNCATE = "truncate"


class FaultPicker:
    def __init__(self, faults: FaultConfig, seed: int) -> None:
        # One generator for the whole server: the same request sequence gets the same faults.
        self._rng = random.Random(seed)
        self._thresholds: list[tuple[float, Fault]] = []
        cumulative = 0.0
        for rate, fault in (
            (faults.rate_429, Fault.TOO_MANY_REQUESTS),
            (faults.rate_500, Fault.SERVER_ERROR),
            (faults.rate_stall, Fault.STALL),
            (faults.rate_truncate, Fault.TRUNCATE),
        ):
            cumulative += rate
            self._thresholds.append((cumulative, fault))

    def pick(self, forced: str | None) -> Fault:
        """The fault for one request; raises ValueError for an unknown forced value."""
        if forced:
            try:
                return Fault(forced.strip().lower())
            except ValueError:
                allowed = "|".join(f.value for f in Fault)
                raise ValueError(f"{FAULT_HEADER} must be one of {allowed}; got {forced!r}") from None
        if not self._thresholds or self._thresholds[-1][0] <= 0:
            return Fault.NONE
        draw = self._rng.random()
        for threshold, fault in self._thresholds:
            if draw < threshold:
                return fault
        return Fault.NONE
