"""Azure Monitor Metrics - List for the model account, as ARM serves it: the account's own token meters.

The contract (Azure/azure-rest-api-specs specification/monitor/resource-manager/Microsoft.Insights/stable/
2024-02-01/metrics_API.json and its examples/GetMetric.json; the call azure-mgmt-monitor 7.0.0 makes as
``MonitorManagementClient.metrics.list``, operations/_metrics_operations.py, default api-version 2024-02-01):
- ``GET {ARM}/{resourceUri}/providers/Microsoft.Insights/metrics?timespan=<start>/<end>&interval=PT1H
  &metricnames=A,B&aggregation=Total&$filter=ModelDeploymentName eq '*'&top=N&metricnamespace=...
  &api-version=2024-02-01`` -> 200 Response ``{"cost", "timespan", "interval", "namespace", "resourceregion",
  "value": [Metric]}``; a Metric is ``{"id", "type": "Microsoft.Insights/metrics", "name": {"value",
  "localizedValue"}, "displayDescription", "unit", "timeseries": [{"metadatavalues": [{"name": {"value",
  "localizedValue"}, "value"}], "data": [{"timeStamp", "total"}]}], "errorCode": "Success"}``; dimension names
  in metadatavalues come back lower-cased ("tier" for Tier in GetMetric.json);
- ``top`` "The maximum number of records to retrieve per resource ID in the request. Valid only if filter is
  specified. Defaults to 10." (the spec's parameter): a split by deployment returns at most 10 series unless
  the caller asks for more; which 10 Azure keeps is not documented, the stand-in keeps the largest;
- ``interval`` defaults to PT1M; the stand-in accepts the time grains Azure offers for metric queries
  (PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H, P1D) and refuses others unless AutoAdjustTimegrain=true;
- an error of the metrics API itself is ``{"code", "message"}`` (not wrapped in "error", unlike the batch API:
  MicrosoftDocs/azure-monitor-docs articles/azure-monitor/metrics/migrate-to-batch-api.md, "Error response
  changes"); ARM's own refusals (401, 403, 404, 429, api-version) are wrapped, as in standins/arm.py.
- Throttling: the metrics API "used the default ARM throttling limits" (the SDK's docstring); over them
  ARM answers "HTTP status code 429 Too many requests. The response includes a Retry-After value, which
  specifies the number of seconds your application should wait" (learn.microsoft.com/azure/
  azure-resource-manager/management/request-limits-and-throttling).
- Authorization: the identity needs ``Microsoft.Insights/metrics/read`` on the account (Monitoring Reader
  holds it as */read; infra gives the app a custom role with exactly it): without it 403 AuthorizationFailed.

The metrics are the account's (standins/simulator/meters.py: ProcessedPromptTokens, GeneratedTokens,
TokenTransaction, time grain PT1M, aggregation Total, dimension ModelDeploymentName; the Learn "supported
metrics" page for Microsoft.CognitiveServices/accounts). Never kinder than Azure: only aggregation Total
and the ModelDeploymentName dimension are modelled (anything else is refused with 400, where Azure would
answer); a minute is served only ``latency_seconds`` after it ended (platform metrics arrive late; Microsoft
publishes no figure for these metrics, so the stack's value is ours); an interval with no calls has a
data point without ``total`` (the client must not read a missing value as a number).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from standins.simulator.meters import MeterRecord

METRICS_API_VERSION = "2024-02-01"
METRICS_READ_ACTION = "Microsoft.Insights/metrics/read"
NAMESPACE = "Microsoft.CognitiveServices/accounts"
DIMENSION = "ModelDeploymentName"
DEFAULT_TOP = 10
_GRAINS = {
    "PT1M": 1, "PT5M": 5, "PT15M": 15, "PT30M": 30, "PT1H": 60, "PT6H": 360, "PT12H": 720, "P1D": 1440,
}  # fmt: skip


@dataclass(frozen=True)
class MetricSpec:
    name: str
    localized: str
    description: str
    value: Callable[[MeterRecord], int]


# Names, display names and descriptions as the supported-metrics page lists them.
METRICS: dict[str, MetricSpec] = {
    spec.name.casefold(): spec
    for spec in (
        MetricSpec("ProcessedPromptTokens", "Processed Prompt Tokens",
                   "Number of prompt tokens processed (input) on an OpenAI model.", lambda r: r.prompt_tokens),
        MetricSpec("GeneratedTokens", "Generated Completion Tokens",
                   "Number of tokens generated (output) from an OpenAI model.", lambda r: r.generated_tokens),
        MetricSpec("TokenTransaction", "Processed Inference Tokens",
                   "Number of inference tokens processed on an OpenAI model. Calculated as prompt tokens (input) "
                   "plus generated tokens (output).", lambda r: r.prompt_tokens + r.generated_tokens),
    )
}  # fmt: skip
_FILTER_TERM = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


class MeterSource(Protocol):
    """Where the account's meters come from: the simulator (its /_standin/meters route) or, in tests, its meters."""

    async def read(self) -> list[MeterRecord]: ...


@dataclass(frozen=True)
class SimulatorMeters:
    """The simulator process's meters, over its stand-in route."""

    url: str

    async def read(self) -> list[MeterRecord]:
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.get(f"{self.url.rstrip('/')}/_standin/meters") as response,
        ):
            response.raise_for_status()
            body = await response.json()
        return [MeterRecord.from_json(item) for item in body["meters"]]


class MetricsQueryError(ValueError):
    """A query the metrics API refuses with 400 {"code", "message"}."""

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


def metrics_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status, headers=headers)


@dataclass(frozen=True)
class MetricsQuery:
    start: datetime
    end: datetime
    grain_minutes: int
    metrics: tuple[MetricSpec, ...]
    split: bool  # $filter named the deployment dimension
    deployments: frozenset[str] | None  # folded names to keep; None: every one
    top: int

    @property
    def interval(self) -> str:
        return next(name for name, minutes in _GRAINS.items() if minutes == self.grain_minutes)


def parse_query(query: Mapping[str, str], now: datetime) -> MetricsQuery:
    """The query parameters as the metrics API reads them; raises MetricsQueryError for a 400."""
    names = [name.strip() for name in query.get("metricnames", "").split(",") if name.strip()]
    if not names:
        raise MetricsQueryError("metricnames is required by this stand-in (Azure would list the defaults)")
    unknown = [name for name in names if name.casefold() not in METRICS]
    if unknown:
        valid = ", ".join(spec.name for spec in METRICS.values())
        # Azure's answer to an unknown name, 400 {"code": "BadRequest", "message": "Failed to find metric configuration
        # for provider: microsoft.operationalinsights, resource Type: workspaces, metric: ..., Valid metrics: ..."}
        # (quoted in github.com/Azure/azure-sdk-for-net/issues/29584).
        raise MetricsQueryError(
            f"Failed to find metric configuration for provider: microsoft.cognitiveservices, resource Type: accounts, "
            f"metric: {unknown[0]}, Valid metrics: {valid}"
        )
    namespace = query.get("metricnamespace")
    if namespace is not None and namespace.casefold() != NAMESPACE.casefold():
        raise MetricsQueryError(f"Metric namespace {namespace} is not {NAMESPACE}")
    aggregations = {part.strip().casefold() for part in query.get("aggregation", "total").split(",") if part.strip()}
    if aggregations != {"total"}:
        raise MetricsQueryError(f"this stand-in serves aggregation Total only, not {query.get('aggregation')}")
    start, end = _timespan(query.get("timespan"), now)
    grain = _grain(query.get("interval", "PT1M"), query.get("AutoAdjustTimegrain", "false").casefold() == "true")
    split, deployments = _filter(query.get("$filter"))
    try:
        top = int(query.get("top", DEFAULT_TOP))
    except ValueError:
        raise MetricsQueryError(f"top {query.get('top')!r} is not a whole number") from None
    if top < 1:
        raise MetricsQueryError("top must be at least 1")
    return MetricsQuery(start, end, grain, tuple(METRICS[name.casefold()] for name in names), split, deployments, top)


def _timespan(value: str | None, now: datetime) -> tuple[datetime, datetime]:
    if not value:
        return now - timedelta(hours=1), now  # the API's default: the last hour
    head, sep, tail = value.partition("/")
    try:
        if not sep:
            raise ValueError
        start = datetime.fromisoformat(head.replace("Z", "+00:00")).astimezone(UTC)
        end = datetime.fromisoformat(tail.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise MetricsQueryError(f"Invalid timespan {value!r}: expected <start>/<end> in ISO 8601") from None
    if end <= start:
        raise MetricsQueryError(f"Invalid timespan {value!r}: the end is not after the start")
    return start, end


def _grain(value: str, auto_adjust: bool) -> int:
    minutes = _GRAINS.get(value.upper())
    if minutes is not None:
        return minutes
    if auto_adjust:
        return 1
    raise MetricsQueryError(f"Invalid time grain {value!r}; supported: {', '.join(_GRAINS)}")


def _filter(value: str | None) -> tuple[bool, frozenset[str] | None]:
    if not value:
        return False, None
    wanted: set[str] = set()
    for term in re.split(r"\s+or\s+", value.strip(), flags=re.IGNORECASE):
        match = _FILTER_TERM.match(term)
        if match is None or match.group(1).casefold() != DIMENSION.casefold():
            raise MetricsQueryError(f"this stand-in models the {DIMENSION} dimension only; $filter {value!r}")
        wanted.add(match.group(2).casefold())
    return True, None if "*" in wanted else frozenset(wanted)


def metrics_response(
    query: MetricsQuery, records: Sequence[MeterRecord], *, resource_id: str, region: str, visible_until: datetime
) -> dict[str, Any]:
    """The Response body for the meter records: minutes ending after `visible_until` are not in yet."""
    width = timedelta(minutes=query.grain_minutes)
    buckets = max(1, int((query.end - query.start) / width))
    values = []
    for spec in query.metrics:
        series: dict[str, list[int | None]] = {}
        for record in records:
            if not (query.start <= record.minute < query.start + buckets * width):
                continue
            if record.minute + timedelta(minutes=1) > visible_until:
                continue
            key = record.deployment if query.split else ""
            if query.deployments is not None and record.deployment.casefold() not in query.deployments:
                continue
            points = series.setdefault(key, [None] * buckets)
            index = int((record.minute - query.start) / width)
            points[index] = (points[index] or 0) + spec.value(record)
        ranked = sorted(series.items(), key=lambda item: (-sum(p or 0 for p in item[1]), item[0]))
        if query.split:
            ranked = ranked[: query.top]
        values.append(_metric(spec, ranked, query, resource_id, buckets))
    return {
        "cost": 0,
        "timespan": f"{_iso(query.start)}/{_iso(query.end)}",
        "interval": query.interval,
        "value": values,
        "namespace": NAMESPACE.casefold(),
        "resourceregion": region,
    }


def _metric(
    spec: MetricSpec, ranked: list[tuple[str, list[int | None]]], query: MetricsQuery, resource_id: str, buckets: int
) -> dict[str, Any]:
    width = timedelta(minutes=query.grain_minutes)
    timeseries = []
    for deployment, points in ranked:
        data = []
        for index, total in enumerate(points):
            point: dict[str, Any] = {"timeStamp": _iso(query.start + index * width)}
            if total is not None:
                point["total"] = float(total)
            data.append(point)
        metadata = (
            [{"name": {"value": DIMENSION.lower(), "localizedValue": DIMENSION.lower()}, "value": deployment}]
            if query.split
            else []
        )
        timeseries.append({"metadatavalues": metadata, "data": data})
    if not query.split and not timeseries:  # no split: one series, whether or not anything was metered
        data = [{"timeStamp": _iso(query.start + index * width)} for index in range(buckets)]
        timeseries.append({"metadatavalues": [], "data": data})
    return {
        "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{spec.name}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": spec.name, "localizedValue": spec.localized},
        "displayDescription": spec.description,
        "unit": "Count",
        "timeseries": timeseries,
        "errorCode": "Success",
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
