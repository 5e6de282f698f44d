"""Seeded fault injection inside the stand-ins, driven by one JSON control file (the chaos soak of issue 14).

The control file (``--chaos FILE`` on each stand-in; ``start_stack(chaos_file=...)`` passes it to all)::

    {"seed": 7, "retry_after_seconds": 2, "timeout_seconds": 4, "late_minutes": 90,
     "faults": {"monitor.query": {"500": 0.02, "429": 0.02, "partial": 0.02, "timeout": 0.01}, ...}}

A rate is the chance per request (per message for ``smtp``, per exported metric row for
``gateway.metrics``) that the point answers with that kind of fault; a point or kind not named is 0.
Each request draws once per point from ``random.Random(f"{seed}:{point}")``, so the same request
sequence meets the same faults. The file is looked at no more than once a second and re-read when its
mtime (or size) changes, so a driver can turn faults on and off during a run by replacing it (temp file
+ rename). No file: no faults. A file that does not parse or names an unknown point, kind or field is
logged as an error naming the file and the field, and the previous plan stays (a stand-in never stops
for it).

Every fault injected is one JSON line appended to ``chaos-injected.jsonl`` next to the control file
(``{"at", "point", "kind", "detail"}``), written with O_APPEND in a single write so the stand-in
processes can share it; ``count_injected`` counts them per (point, kind).

The fault shapes live with each stand-in (standins/monitor/chaos_faults.py, acs_email.py, arm.py,
mail.py, gateway/metrics.py); what HTTP stand-ins share is here: the Retry-After header and
dropping a connection without an answer.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("standins.chaos")

INJECTED_LOG_NAME = "chaos-injected.jsonl"
RELOAD_INTERVAL_SECONDS = 1.0
# The fault kinds of each point, in the order a draw walks them (the order is part of the seeded contract).
POINT_KINDS: Mapping[str, tuple[str, ...]] = {
    "monitor.query": ("500", "503", "429", "partial", "timeout"),
    "monitor.ingestion": ("500", "503", "429", "413", "drop_after_accept"),
    "acs.send": ("500", "503"),
    "arm": ("500", "503", "429"),
    "smtp": ("refuse", "drop_after_data"),
    "gateway.metrics": ("late",),
}
_DEFAULTS: Mapping[str, float] = {"retry_after_seconds": 1, "timeout_seconds": 30, "late_minutes": 90}


class ChaosPlanError(ValueError):
    """A control file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ChaosPlan:
    """What to inject. The empty plan (no file) injects nothing."""

    seed: int | str = 0
    # Retry-After on 429s (and the 503s that carry one), whole seconds as the header requires
    # (RFC 9110 section 10.2.3: delay-seconds = 1*DIGIT).
    retry_after_seconds: int = 1
    timeout_seconds: float = 30.0  # "timeout": how long a request is held before its connection drops
    late_minutes: float = 90.0  # gateway.metrics "late": how long a held row waits
    faults: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def rate(self, point: str, kind: str) -> float:
        return self.faults.get(point, {}).get(kind, 0.0)


def parse_plan(data: Any, source: str) -> ChaosPlan:
    """The plan a control file's JSON describes; ChaosPlanError names `source` and the field at fault."""

    def bad(where: str, problem: str) -> ChaosPlanError:
        return ChaosPlanError(f"{source}: field '{where}': {problem}")

    if not isinstance(data, dict):
        raise ChaosPlanError(f"{source}: the control file must be a JSON object")
    unknown = set(data) - {"seed", "faults", *_DEFAULTS}
    if unknown:
        raise bad(sorted(unknown)[0], f"unknown field (known: seed, faults, {', '.join(_DEFAULTS)})")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        raise bad("seed", f"must be an integer or a string, got {seed!r}")
    numbers: dict[str, float] = {}
    for name, default in _DEFAULTS.items():
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise bad(name, f"must be a number >= 0, got {value!r}")
        numbers[name] = value
    if numbers["retry_after_seconds"] != int(numbers["retry_after_seconds"]):
        raise bad("retry_after_seconds", f"must be whole seconds (Retry-After), got {numbers['retry_after_seconds']!r}")
    faults_data = data.get("faults", {})
    if not isinstance(faults_data, dict):
        raise bad("faults", "must be an object of point -> {kind: rate}")
    faults: dict[str, dict[str, float]] = {}
    for point, rates in faults_data.items():
        if point not in POINT_KINDS:
            raise bad(f"faults.{point}", f"unknown point (known: {', '.join(POINT_KINDS)})")
        if not isinstance(rates, dict):
            raise bad(f"faults.{point}", "must be an object of kind -> rate")
        for kind, rate in rates.items():
            where = f"faults.{point}.{kind}"
            if kind not in POINT_KINDS[point]:
                raise bad(where, f"unknown kind for {point} (known: {', '.join(POINT_KINDS[point])})")
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise bad(where, f"must be a rate between 0 and 1, got {rate!r}")
        if sum(rates.values()) > 1 + 1e-9:
            raise bad(f"faults.{point}", f"the rates add up to {sum(rates.values()):g}, more than 1")
        faults[point] = {kind: float(rate) for kind, rate in rates.items()}
    return ChaosPlan(
        seed=seed,
        retry_after_seconds=int(numbers["retry_after_seconds"]),
        timeout_seconds=float(numbers["timeout_seconds"]),
        late_minutes=float(numbers["late_minutes"]),
        faults=faults,
    )


def load_plan(path: Path) -> ChaosPlan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ChaosPlanError(f"{path}: cannot be read: {error}") from error
    except json.JSONDecodeError as error:
        raise ChaosPlanError(f"{path}: line {error.lineno}: not JSON: {error.msg}") from error
    return parse_plan(data, str(path))


class Chaos:
    """The faults one stand-in process injects: the plan (kept fresh from the control file), the seeded
    draws per point and the injection log. Thread-safe (the SMTP stand-in runs on its own thread)."""

    def __init__(self, control_file: Path, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.control_file = control_file
        self.log_file = control_file.parent / INJECTED_LOG_NAME
        self._monotonic = monotonic
        self._plan = ChaosPlan()
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) the plan was read at; None: no file
        self._checked_at = -math.inf
        self._draws: dict[str, random.Random] = {}
        self._lock = threading.Lock()

    @property
    def plan(self) -> ChaosPlan:
        with self._lock:
            self._refresh()
            return self._plan

    def _refresh(self) -> None:
        now = self._monotonic()
        if now - self._checked_at < RELOAD_INTERVAL_SECONDS:
            return
        self._checked_at = now
        try:
            status = os.stat(self.control_file)
            stamp: tuple[int, int] | None = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        if stamp is None:
            self._use(ChaosPlan())
            log.info("chaos: %s is gone: no faults", self.control_file)
            return
        try:
            plan = load_plan(self.control_file)
        except ChaosPlanError as error:
            log.error("chaos: %s; keeping the previous plan", error)
            return
        self._use(plan)
        log.info("chaos: plan from %s (seed %s): %s", self.control_file, plan.seed, dict(plan.faults))

    def _use(self, plan: ChaosPlan) -> None:
        if plan.seed != self._plan.seed:
            self._draws.clear()  # a new seed starts every point's sequence afresh
        self._plan = plan

    def draw(self, point: str) -> str | None:
        """The fault kind this request (message, row) of `point` meets, or None. Records nothing."""
        with self._lock:
            self._refresh()
            rates = self._plan.faults.get(point)
            if not rates:
                return None
            draws = self._draws.get(point)
            if draws is None:
                draws = self._draws[point] = random.Random(f"{self._plan.seed}:{point}")
            value = draws.random()
            threshold = 0.0
            for kind in POINT_KINDS[point]:
                threshold += rates.get(kind, 0.0)
                if value < threshold:
                    return kind
            return None

    def record(self, point: str, kind: str, detail: str = "") -> None:
        """Append one line to the injection log (one write, O_APPEND: processes share the file)."""
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "point": point, "kind": kind, "detail": detail})
        try:
            fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as error:  # the fault still happens; only its count is lost, loudly
            log.error("chaos: could not record %s %s in %s: %s", point, kind, self.log_file, error)

    def inject(self, point: str, detail: str = "") -> str | None:
        """Draw, and record the fault drawn (if any)."""
        kind = self.draw(point)
        if kind is not None:
            self.record(point, kind, detail)
        return kind


def count_injected(path: Path) -> dict[tuple[str, str], int]:
    """Faults injected so far per (point, kind). `path`: the injection log, or the control file or its
    directory (the log next to it). No log yet: nothing injected."""
    log_file = path / INJECTED_LOG_NAME if path.is_dir() else path
    if log_file.name != INJECTED_LOG_NAME:
        log_file = log_file.parent / INJECTED_LOG_NAME
    counts: dict[tuple[str, str], int] = {}
    try:
        text = log_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return counts
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            key = (str(entry["point"]), str(entry["kind"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{log_file}: line {number}: not an injection record: {error}") from error
        counts[key] = counts.get(key, 0) + 1
    return counts


def add_chaos_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--chaos", type=Path, default=None, metavar="FILE",
        help="fault-injection control file (standins/chaos.py; the soak); absent: no faults",
    )  # fmt: skip


def chaos_from(control_file: Path | None) -> Chaos | None:
    return None if control_file is None else Chaos(control_file)


# -- what the HTTP stand-ins share -------------------------------------------------------------------


def retry_after(plan: ChaosPlan) -> dict[str, str]:
    return {"Retry-After": str(plan.retry_after_seconds)}


def drop_connection(request: web.BaseRequest) -> None:
    """Close the connection without an answer: the client sees it closed with no response (requests/azure-core:
    "Remote end closed connection without response", a ServiceResponseError, which azure-core retries only for
    idempotent methods, so never for the POSTs of the query and ingestion APIs). The caller returns any response
    afterwards; aiohttp has nothing left to write it to."""
    if request.transport is not None:
        request.transport.abort()


async def hold_then_drop(request: web.BaseRequest, seconds: float) -> None:
    """Hold the request, then drop its connection: what a client sees when an idle timeout between it and
    the service fires (Azure Load Balancer closes an idle flow silently after its idle timeout, 4 minutes by
    default: learn.microsoft.com/azure/load-balancer/load-balancer-tcp-idle-timeout)."""
    import asyncio

    await asyncio.sleep(seconds)
    drop_connection(request)
