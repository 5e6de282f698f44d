"""The model account's own token meters: what each deployment processed, per minute.

An Azure OpenAI / Foundry account meters every call it serves, whoever sent it, as platform metrics
sampled per minute (time grain PT1M), split by the ModelDeploymentName dimension among others:
``ProcessedPromptTokens`` ("Number of prompt tokens processed (input) on an OpenAI model"),
``GeneratedTokens`` ("Number of tokens generated (output) from an OpenAI model") and
``TokenTransaction`` ("prompt tokens (input) plus generated tokens (output)"), aggregation Total
(learn.microsoft.com/azure/azure-monitor/reference/supported-metrics/microsoft-cognitiveservices-accounts-metrics;
MicrosoftDocs/azure-reference-other azure-monitor-ref/supported-metrics/includes/
microsoft-cognitiveservices-accounts-metrics-include.md). The simulator keeps the same counters for the
completions it actually generated: the prompt as usage.prompt_tokens reports it (cached tokens included)
and the completion including hidden reasoning tokens (billed as output). A call refused before any
generation (429, 500) processes nothing and is not metered. A call is metered in the minute it ends,
when its last byte has gone out.

The counters are served to the ARM stand-in (standins/arm_metrics.py), which answers the Azure Monitor
Metrics - List API from them, through ``GET /_standin/meters`` on the simulator (a stand-in route, not
an Azure one).

An account keeps its metrics ("platform and custom metrics are stored for 93 days", Azure Monitor Metrics
overview, "Retention of metrics") and its bill whether or not anyone looks, while the local stack stops
and starts: with a meters file (the stack's ``.local/meters.json``) the simulator starts with the
counters it had and keeps the file current, so the account's metrics and bill of earlier days stay
beside the gateway's metrics of those days in the monitor stand-in's file.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MeterRecord:
    """One deployment's counters for one minute (UTC, minute start)."""

    deployment: str
    minute: datetime
    prompt_tokens: int
    generated_tokens: int
    requests: int
    # Of prompt_tokens, those read from the prompt cache (usage.prompt_tokens_details.cached_tokens): not a platform
    # metric, but billed at the cached price, so the Cost Management stand-in (standins/cost_management.py) needs it.
    cached_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "minute": self.minute.isoformat(),
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "requests": self.requests,
            "cached_tokens": self.cached_tokens,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MeterRecord:
        return cls(
            deployment=str(raw["deployment"]),
            minute=datetime.fromisoformat(str(raw["minute"])).astimezone(UTC),
            prompt_tokens=int(raw["prompt_tokens"]),
            generated_tokens=int(raw["generated_tokens"]),
            requests=int(raw["requests"]),
            cached_tokens=int(raw.get("cached_tokens", 0)),
        )


class TokenMeters:
    """Per deployment and minute: prompt tokens processed, tokens generated, calls served. Thread-safe."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, datetime], list[int]] = {}
        self.changes = 0  # counts every change, so a saver can tell whether anything is new

    def record(self, deployment: str, prompt_tokens: int, generated_tokens: int, cached_tokens: int = 0) -> None:
        minute = self._clock().astimezone(UTC).replace(second=0, microsecond=0)
        with self._lock:
            counts = self._counts.setdefault((deployment, minute), [0, 0, 0, 0])
            counts[0] += prompt_tokens
            counts[1] += generated_tokens
            counts[2] += 1
            counts[3] += cached_tokens
            self.changes += 1

    def add(self, records: Iterable[MeterRecord]) -> None:
        """Counters kept elsewhere (a meters file, a day's history), added to these."""
        with self._lock:
            for record in records:
                counts = self._counts.setdefault((record.deployment, record.minute), [0, 0, 0, 0])
                for index, value in enumerate(
                    (record.prompt_tokens, record.generated_tokens, record.requests, record.cached_tokens)
                ):
                    counts[index] += value
                self.changes += 1

    def records(self) -> list[MeterRecord]:
        with self._lock:
            items = sorted(self._counts.items())
        return [MeterRecord(deployment, minute, *counts) for (deployment, minute), counts in items]

    async def read(self) -> list[MeterRecord]:
        """The same as records(), for the ARM stand-in's meter source protocol (in-process tests)."""
        return self.records()


def records_json(records: Iterable[MeterRecord]) -> dict[str, Any]:
    return {"meters": [record.to_json() for record in records]}


def read_meters_file(path: Path) -> list[MeterRecord]:
    """The counters a meters file holds (none when there is no file yet)."""
    if not path.exists():
        return []
    return [MeterRecord.from_json(raw) for raw in json.loads(path.read_text(encoding="utf-8"))["meters"]]


def write_meters_file(path: Path, records: Iterable[MeterRecord]) -> None:
    """Replace the file at once (a stop half way through a write leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".tmp")
    partial.write_text(json.dumps(records_json(records)), encoding="utf-8")
    partial.replace(path)
