"""Per-minute metric pre-aggregation, as Application Insights does, and its periodic export.

A row stands for every measurement of one metric with one dimension set in one UTC minute:
Sum, ItemCount, Min and Max. Closed minutes leave every ``flush_seconds``; shutdown and
``flush_all`` also send the open minute. A failed export keeps its rows for the next flush.

Injected lateness (standins/chaos.py, point ``gateway.metrics``, kind "late", one draw per row leaving the
aggregator): the row is held back and sent with the first flush `late_minutes` later by the exporter's clock,
as Application Insights data occasionally lands long after it was sent (average ingestion latency is 20 s to
3 minutes and varies per item: learn.microsoft.com/azure/azure-monitor/logs/data-ingestion-time). Held rows
leave at shutdown like the rest; ``flush_all`` does not send them early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from standins.chaos import Chaos
from standins.gateway.sinks import AggregatedMetric, MetricSink

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# Rows kept across failed exports before the oldest are dropped (and logged): bounded memory.
MAX_PENDING_ROWS = 50_000


def utc_now() -> datetime:
    return datetime.now(UTC)


def minute_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


_SeriesKey = tuple[datetime, str, str, tuple[tuple[str, str], ...]]


@dataclass
class _Series:
    total: float = 0.0
    count: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


@dataclass
class MetricAggregator:
    clock: Clock = utc_now
    _series: dict[_SeriesKey, _Series] = field(default_factory=dict)

    def record(self, namespace: str, name: str, value: float, properties: Mapping[str, str]) -> None:
        key = (minute_start(self.clock()), namespace, name, tuple(sorted(properties.items())))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
        series.add(value)

    def drain(self, *, include_open_minute: bool) -> list[AggregatedMetric]:
        current = minute_start(self.clock())
        keys = [key for key in self._series if include_open_minute or key[0] < current]
        rows = []
        for key in sorted(keys):
            series = self._series.pop(key)
            minute, namespace, name, properties = key
            rows.append(
                AggregatedMetric(
                    minute,
                    namespace,
                    name,
                    dict(properties),
                    series.total,
                    series.count,
                    series.minimum,
                    series.maximum,
                )
            )
        return rows


class MetricsExporter:
    """Owns the aggregator, the sink and the retry backlog; flushes on a timer and at stop."""

    def __init__(
        self, sink: MetricSink, *, flush_seconds: float, clock: Clock = utc_now, chaos: Chaos | None = None
    ) -> None:
        self.sink = sink
        self.aggregator = MetricAggregator(clock)
        self._flush_seconds = flush_seconds
        self._pending: list[AggregatedMetric] = []
        self._chaos = chaos
        self._held: list[tuple[datetime, AggregatedMetric]] = []  # late rows and when they may leave
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def record(self, namespace: str, name: str, value: float, properties: Mapping[str, str]) -> None:
        self.aggregator.record(namespace, name, value, properties)

    @property
    def pending(self) -> Sequence[AggregatedMetric]:
        """Rows that failed to export and wait for the next flush."""
        return tuple(self._pending)

    async def flush_closed(self) -> int:
        return await self._flush(include_open_minute=False)

    async def flush_all(self) -> int:
        return await self._flush(include_open_minute=True)

    @property
    def held(self) -> Sequence[AggregatedMetric]:
        """Rows held back as late (injected), not yet due."""
        return tuple(row for _, row in self._held)

    async def _flush(self, *, include_open_minute: bool, release_held: bool = False) -> int:
        """Export the backlog, the held rows now due and the drained rows; returns how many rows were accepted."""
        async with self._lock:
            drained = self._hold_late(self.aggregator.drain(include_open_minute=include_open_minute))
            batch = self._pending + self._due(release_held) + drained
            self._pending = []
            if not batch:
                return 0
            try:
                rejected = list(await self.sink.export(batch))
            except Exception as error:  # any failure: keep everything for the next flush
                log.warning("metrics export of %d rows failed (%s); will retry", len(batch), error)
                rejected = batch
            self._keep(rejected)
            return len(batch) - len(rejected)

    def _hold_late(self, rows: list[AggregatedMetric]) -> list[AggregatedMetric]:
        """The rows to send now; the ones drawn late are held until `late_minutes` from now."""
        if self._chaos is None or not rows:
            return rows
        now = self.aggregator.clock()
        sent: list[AggregatedMetric] = []
        for row in rows:
            if self._chaos.draw("gateway.metrics") != "late":
                sent.append(row)
                continue
            due = now + timedelta(minutes=self._chaos.plan.late_minutes)
            self._held.append((due, row))
            detail = f"{row.name} of {row.minute:%Y-%m-%dT%H:%MZ} held until {due:%Y-%m-%dT%H:%MZ}"
            self._chaos.record("gateway.metrics", "late", detail)
        return sent

    def _due(self, everything: bool) -> list[AggregatedMetric]:
        if not self._held:
            return []
        now = self.aggregator.clock()
        due = [row for when, row in self._held if everything or when <= now]
        self._held = [] if everything else [(when, row) for when, row in self._held if when > now]
        return due

    def _keep(self, rows: list[AggregatedMetric]) -> None:
        overflow = len(rows) - MAX_PENDING_ROWS
        if overflow > 0:
            log.error("dropping %d metric rows after repeated export failures", overflow)
            rows = rows[overflow:]
        self._pending = rows

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            try:
                await self.flush_closed()
            except Exception:  # the timer must survive anything a sink does
                log.exception("periodic metrics flush failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics-flush")

    async def stop(self) -> None:
        """Stop the timer and send everything, the open minute included."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._flush(include_open_minute=True, release_held=True)
        if self._pending:
            log.error("%d metric rows could not be exported before shutdown", len(self._pending))
        await self.sink.close()
