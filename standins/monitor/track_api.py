"""Application Insights ingestion ("track") API: ``POST /v2/track`` and ``POST /v2.1/track``.

APIM's App Insights logger (here: the gateway stand-in) sends pre-aggregated metrics as telemetry
envelopes; each metric in a ``MetricData`` envelope becomes one ``AppMetrics`` row in the
workspace, which is what workspace-based App Insights does. Bodies are a JSON array, a single
envelope, or newline-delimited envelopes, optionally gzip-compressed. The instrumentation key
authenticates, as in App Insights (no bearer token).

Response: ``{"itemsReceived", "itemsAccepted", "errors": [{"index", "statusCode", "message"}]}``
with 200 when all envelopes were accepted, 206 when some were, 400 when none were.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from standins.monitor.bodies import BodyError, read_body
from standins.monitor.coerce import ValueTypeError, parse_datetime
from standins.monitor.config import MonitorConfig
from standins.monitor.schema import METRICS_TABLE
from standins.monitor.store import MonitorStore

TRACK_PATHS = ("/v2/track", "/v2.1/track")
_INT32_MAX = 2**31 - 1


class EnvelopeError(ValueError):
    """An envelope App Insights would refuse; the message is what the per-item error says."""


def parse_envelopes(body: bytes) -> list[Any]:
    """The envelopes in a body; a line that is not JSON is kept as an error marker."""
    text = body.decode("utf-8")
    try:
        parsed = json.loads(text)
    except ValueError:
        items: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                items.append(EnvelopeError(f"Invalid JSON: {exc}"))
        if not items or all(isinstance(item, EnvelopeError) for item in items):
            raise ValueError("the body is neither a JSON array nor newline-delimited JSON") from None
        return items
    return parsed if isinstance(parsed, list) else [parsed]


def _number(metric: Mapping[str, Any], field: str, default: float | None) -> float | None:
    value = metric.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EnvelopeError(f"Field '{field}' on type 'DataPoint' must be a number")
    return float(value)


def _count(metric: Mapping[str, Any]) -> int:
    value = metric.get("count", 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _INT32_MAX:
        raise EnvelopeError("Field 'count' on type 'DataPoint' must be a non-negative 32-bit integer")
    return value


def metric_rows(envelope: Any, config: MonitorConfig) -> list[dict[str, Any]]:
    """The AppMetrics rows of one envelope, or EnvelopeError."""
    if not isinstance(envelope, Mapping):
        raise EnvelopeError("The envelope is not a JSON object")
    if str(envelope.get("iKey", "")).strip().lower() != config.instrumentation_key.lower():
        raise EnvelopeError("Invalid instrumentation key")
    if not envelope.get("name"):
        raise EnvelopeError("Field 'name' on type 'Envelope' is required but missing or empty.")
    try:
        time = parse_datetime(envelope.get("time"))
    except ValueTypeError as exc:
        raise EnvelopeError(f"Field 'time' on type 'Envelope' is invalid: {exc}") from exc
    data = envelope.get("data")
    if not isinstance(data, Mapping) or data.get("baseType") != "MetricData":
        raise EnvelopeError("Only MetricData telemetry is stored by the local App Insights stand-in")
    base = data.get("baseData")
    metrics = base.get("metrics") if isinstance(base, Mapping) else None
    if not isinstance(metrics, list) or not metrics:
        raise EnvelopeError("Field 'metrics' on type 'MetricData' is required but missing or empty.")
    properties = base.get("properties") if isinstance(base, Mapping) else None
    if properties is not None and not isinstance(properties, Mapping):
        raise EnvelopeError("Field 'properties' on type 'MetricData' must be an object")
    raw_tags = envelope.get("tags")
    tags: Mapping[str, Any] = raw_tags if isinstance(raw_tags, Mapping) else {}
    shared = {
        "TenantId": config.workspace_id,
        "TimeGenerated": time,
        "Properties": json.dumps(
            {str(k): str(v) for k, v in (properties or {}).items()}, separators=(",", ":")
        ),
        "AppRoleName": tags.get("ai.cloud.role"),
        "AppRoleInstance": tags.get("ai.cloud.roleInstance"),
        "AppVersion": tags.get("ai.application.ver"),
        "ClientType": "PC",
        "ClientIP": tags.get("ai.location.ip", "0.0.0.0"),
        "SDKVersion": tags.get("ai.internal.sdkVersion"),
        "IKey": config.instrumentation_key,
        "ResourceGUID": config.app_id,
        "OperationId": tags.get("ai.operation.id"),
        "OperationName": tags.get("ai.operation.name"),
        "SourceSystem": "Azure",
        "Type": METRICS_TABLE,
        "_ResourceId": config.app_resource_id,
    }
    rows = []
    for metric in metrics:
        if not isinstance(metric, Mapping) or not isinstance(metric.get("name"), str) or not metric["name"]:
            raise EnvelopeError("Field 'name' on type 'DataPoint' is required but missing or empty.")
        value = _number(metric, "value", None)
        if value is None:
            raise EnvelopeError("Field 'value' on type 'DataPoint' is required but missing.")
        rows.append(
            {
                **shared,
                "Name": metric["name"],
                "Sum": value,
                "ItemCount": _count(metric),
                "Min": _number(metric, "min", value),
                "Max": _number(metric, "max", value),
            }
        )
    return rows


class TrackApi:
    def __init__(self, config: MonitorConfig, store: MonitorStore) -> None:
        self._config = config
        self._store = store

    def add_routes(self, app: web.Application) -> None:
        for path in TRACK_PATHS:
            app.router.add_post(path, self.post_track)

    async def post_track(self, request: web.Request) -> web.Response:
        try:
            envelopes = parse_envelopes(await read_body(request))
        except (BodyError, UnicodeDecodeError, ValueError) as exc:
            return self._response(
                0, 0, [{"index": 0, "statusCode": 400, "message": f"Invalid payload: {exc}"}]
            )
        rows: list[dict[str, Any]] = []
        item_errors: list[dict[str, Any]] = []
        for index, envelope in enumerate(envelopes):
            try:
                if isinstance(envelope, EnvelopeError):
                    raise envelope
                rows.extend(metric_rows(envelope, self._config))
            except EnvelopeError as exc:
                item_errors.append({"index": index, "statusCode": 400, "message": str(exc)})
        await asyncio.to_thread(self._store.insert_rows, METRICS_TABLE, rows)
        return self._response(len(envelopes), len(envelopes) - len(item_errors), item_errors)

    def _response(self, received: int, accepted: int, item_errors: list[dict[str, Any]]) -> web.Response:
        status = 200 if not item_errors else (206 if accepted else 400)
        body = {
            "itemsReceived": received,
            "itemsAccepted": accepted,
            "appId": self._config.app_id,
            "errors": item_errors,
        }
        return web.json_response(body, status=status)
