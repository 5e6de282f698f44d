"""Where aggregated metric rows go: Application Insights' track endpoint, or memory for tests."""

from __future__ import annotations

import abc
import json
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)
SDK_VERSION = "apim:standin-1.0"
# Item status codes in a 206 answer worth sending again (the App Insights SDKs retry these).
_RETRIABLE_ITEM_STATUS = frozenset({408, 429, 439, 500, 502, 503, 504})


@dataclass(frozen=True)
class AggregatedMetric:
    minute: datetime  # UTC minute start
    namespace: str
    name: str
    properties: dict[str, str]
    total: float
    count: int
    minimum: float
    maximum: float


class MetricSink(abc.ABC):
    @abc.abstractmethod
    async def export(self, batch: Sequence[AggregatedMetric]) -> Sequence[AggregatedMetric]:
        """Send ``batch``; return the rows to retry later, or raise to retry all of them."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold nothing
        """Release connections."""


class InMemorySink(MetricSink):
    def __init__(self) -> None:
        self.rows: list[AggregatedMetric] = []

    async def export(self, batch: Sequence[AggregatedMetric]) -> Sequence[AggregatedMetric]:
        self.rows.extend(batch)
        return ()


def track_envelope(row: AggregatedMetric, ikey: str, role: str, role_instance: str) -> dict[str, Any]:
    """One pre-aggregated MetricData item in the Application Insights ingestion schema."""
    return {
        "name": f"Microsoft.ApplicationInsights.{ikey.replace('-', '')}.Metric",
        "time": row.minute.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "iKey": ikey,
        "tags": {
            "ai.cloud.role": role,
            "ai.cloud.roleInstance": role_instance,
            "ai.internal.sdkVersion": SDK_VERSION,
        },
        "data": {
            "baseType": "MetricData",
            "baseData": {
                "ver": 2,
                "metrics": [
                    {
                        "name": row.name,
                        "ns": row.namespace,
                        "value": row.total,
                        "count": row.count,
                        "min": row.minimum,
                        "max": row.maximum,
                        "stdDev": 0,
                    }
                ],
                "properties": dict(row.properties),
            },
        },
    }


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class AppInsightsTrackSink(MetricSink):
    """POSTs envelopes to ``{IngestionEndpoint}v2.1/track`` over TLS trusting ``ca_cert``."""

    def __init__(
        self,
        ingestion_endpoint: str,
        instrumentation_key: str,
        *,
        ca_cert: Path | None = None,
        role: str = "managed",
        role_instance: str | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.url = ingestion_endpoint.rstrip("/") + "/v2.1/track"
        self._ikey = instrumentation_key
        self._ca_cert = ca_cert
        self._role = role
        self._role_instance = role_instance or socket.gethostname()
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            ssl_context = ssl.create_default_context(cafile=str(self._ca_cert) if self._ca_cert else None)
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(ssl=ssl_context, limit=4)
            )
        return self._session

    async def export(self, batch: Sequence[AggregatedMetric]) -> Sequence[AggregatedMetric]:
        body = json.dumps([track_envelope(row, self._ikey, self._role, self._role_instance) for row in batch])
        async with self._client().post(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        ) as response:
            text = await response.text()
            if response.status == 200:
                return ()
            answer = _json_or_none(text)
            # 206 (some accepted) and 400 (none) list per-item errors; anything else is retried whole.
            if response.status not in (206, 400) or not isinstance(answer, dict) or "errors" not in answer:
                raise RuntimeError(f"POST {self.url} answered {response.status}: {text[:300]}")
        return self._partial(batch, answer)

    def _partial(self, batch: Sequence[AggregatedMetric], answer: dict[str, Any]) -> list[AggregatedMetric]:
        retry: list[AggregatedMetric] = []
        for error in answer.get("errors", []):
            index, status = int(error.get("index", -1)), int(error.get("statusCode", 0))
            if not 0 <= index < len(batch):
                continue
            if status in _RETRIABLE_ITEM_STATUS:
                retry.append(batch[index])
            else:
                log.error(
                    "App Insights rejected metric %s: %s %s", batch[index].name, status, error.get("message")
                )
        return retry

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
