"""The Azure Monitor stand-in, exercised through the unmodified Azure SDK clients over HTTPS.

Servers run on a background event loop so the synchronous SDK clients (what the function app
uses) can call them from the test thread exactly as they would call Azure.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.identity import ManagedIdentityCredential
from azure.monitor.ingestion import LogsIngestionClient, LogsUploadError
from azure.monitor.query import LogsBatchQuery, LogsQueryClient, LogsQueryPartialResult, LogsQueryResult

from standins._server import RunningServer
from standins.identity import TokenSigner, identity_env, start_identity
from standins.monitor import MonitorConfig, QueryResult, RunningMonitor, bulk_insert_app_metrics, start_monitor
from standins.monitor.coerce import ValueTypeError, coerce, coerce_column
from standins.monitor.ingestion_api import RowError, _check_rows, _columns_of_checked_rows, validate_rows
from standins.monitor.schema import load_schema
from standins.monitor.store import MonitorStore
from standins.monitor.wire import _CONVERTERS, wire_rows
from standins.tls import ensure_tls
from tests import ROOT
from tests.support.loop import LoopThread
from tests.support.monitor import fresh_monitor_config

LAB_QUERY = (
    "customMetrics | where name == 'Total Tokens' "
    "| extend parsedCustomDimensions = parse_json(customDimensions) "
    "| extend clientIP = tostring(parsedCustomDimensions.['Client IP']) "
    "| extend apiId = tostring(parsedCustomDimensions.['API ID']) "
    "| extend apimSubscription = tostring(parsedCustomDimensions.['Subscription ID']) "
    "| extend UserId = tostring(parsedCustomDimensions.['User ID']) "
    "| project timestamp, value, clientIP, apiId, apimSubscription, UserId "
    "| order by timestamp asc"
)


@dataclass
class Stack:
    monitor: RunningMonitor
    identity: RunningServer
    config: MonitorConfig
    identity_header: str

    @property
    def url(self) -> str:
        return self.monitor.url

    @property
    def ca(self) -> str:
        return str(self.monitor.ca_path)

    def query_client(self, **kwargs: Any) -> LogsQueryClient:
        return LogsQueryClient(
            ManagedIdentityCredential(), endpoint=f"{self.url}/v1", connection_verify=self.ca, **kwargs
        )

    def ingestion_client(self) -> LogsIngestionClient:
        return LogsIngestionClient(self.url, ManagedIdentityCredential(), connection_verify=self.ca)

    def track(self, body: bytes | list[dict[str, Any]], **headers: str) -> requests.Response:
        data = json.dumps(body).encode() if isinstance(body, list) else body
        return requests.post(f"{self.url}/v2.1/track", data=data, headers=headers, verify=self.ca, timeout=10)

    def envelope(self, when: dt.datetime, metrics: list[dict[str, Any]], **properties: str) -> dict[str, Any]:
        return {
            "name": "Microsoft.ApplicationInsights.Metric",
            "time": when.isoformat().replace("+00:00", "Z"),
            "iKey": self.config.instrumentation_key,
            "tags": {
                "ai.cloud.role": "apim-local",
                "ai.cloud.roleInstance": "gw-0",
                "ai.internal.sdkVersion": "apim:1",
            },
            "data": {
                "baseType": "MetricData",
                "baseData": {"ver": 2, "metrics": metrics, "properties": properties},
            },
        }


@pytest.fixture
def make_stack(loop_thread: LoopThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[Stack] = []
    secret = secrets.token_hex(32)
    header = secrets.token_urlsafe(16)
    identity = loop_thread.run(start_identity(secret, header))
    for name, value in identity_env(identity.url, header).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)

    def make(**overrides: Any) -> Stack:
        config = fresh_monitor_config(tmp_path, secret, db_name=f"monitor-{len(started)}.duckdb", **overrides)
        stack = Stack(loop_thread.run(start_monitor(config)), identity, config, header)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        loop_thread.run(stack.monitor.stop())
    loop_thread.run(identity.stop())


@pytest.fixture
def stack(make_stack: Any) -> Stack:
    result: Stack = make_stack()
    return result


def _tokens(value: float, count: int, lo: float, hi: float) -> dict[str, Any]:
    return {"name": "Total Tokens", "ns": "AzureOpenAI", "value": value, "count": count, "min": lo, "max": hi}


def _query(stack: Stack, kql: str, timespan: Any = None) -> LogsQueryResult:
    result = stack.query_client().query_workspace(stack.config.workspace_id, kql, timespan=timespan)
    assert isinstance(result, LogsQueryResult)
    return result


# -- App Insights track -> AppMetrics / customMetrics ------------------------------------------


def test_tracked_metrics_are_rows_of_appmetrics_and_custommetrics(stack: Stack) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    dims = {"Client IP": "10.0.0.7", "API ID": "openai", "Subscription ID": "team-a", "User ID": "u1"}
    envelopes = [
        stack.envelope(now - dt.timedelta(minutes=2), [_tokens(300, 3, 50, 150)], **dims),
        stack.envelope(
            now - dt.timedelta(minutes=1),
            [_tokens(40, 1, 40, 40), {"name": "Prompt Tokens", "value": 25, "count": 1}],
            **{**dims, "User ID": "u2"},
        ),
    ]
    response = stack.track(envelopes)
    assert response.status_code == 200, response.text
    assert response.json()["itemsReceived"] == 2 and response.json()["itemsAccepted"] == 2

    table = _query(stack, LAB_QUERY).tables[0]
    assert table.columns == ["timestamp", "value", "clientIP", "apiId", "apimSubscription", "UserId"]
    assert table.columns_types == ["datetime", "real", "string", "string", "string", "string"]
    assert [list(row) for row in table.rows] == [
        [now - dt.timedelta(minutes=2), 300.0, "10.0.0.7", "openai", "team-a", "u1"],
        [now - dt.timedelta(minutes=1), 40.0, "10.0.0.7", "openai", "team-a", "u2"],
    ]

    metrics = _query(
        stack,
        "AppMetrics | summarize Sum=sum(Sum), ItemCount=sum(ItemCount), Min=min(Min), Max=max(Max) by Name "
        "| order by Name asc",
    ).tables[0]
    assert [list(row) for row in metrics.rows] == [
        ["Prompt Tokens", 25.0, 1, 25.0, 25.0],
        ["Total Tokens", 340.0, 4, 40.0, 150.0],
    ]
    detail = _query(
        stack,
        "AppMetrics | where Sum == 300 | project AppRoleName, ClientType, SDKVersion, IKey, Type, Properties",
    ).tables[0]
    role, client_type, sdk, ikey, kind, properties = detail.rows[0]
    assert (role, client_type, sdk, ikey, kind) == (
        "apim-local",
        "PC",
        "apim:1",
        stack.config.instrumentation_key,
        "AppMetrics",
    )
    assert detail.columns_types[-1] == "dynamic"
    assert json.loads(properties) == dims  # dynamic cells arrive as JSON text, as from Log Analytics


def test_custommetrics_columns_match_the_declared_schema(stack: Stack) -> None:
    declared = load_schema().views[0].columns
    table = _query(stack, "customMetrics | take 1").tables[0]
    assert table.columns == [column.name for column in declared]
    assert table.columns_types == [column.kusto_type for column in declared]


def test_query_result_types_are_kusto_names(stack: Stack) -> None:
    table = _query(
        stack,
        "print d=datetime(2024-05-01T10:00:00Z), s='x', r=1.5, l=tolong(2), i=toint(3), b=true,"
        " j=dynamic({'a':[1]})",
    ).tables[0]
    assert table.columns_types == ["datetime", "string", "real", "long", "int", "bool", "dynamic"]
    assert list(table.rows[0]) == [
        dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC),
        "x",
        1.5,
        2,
        3,
        True,
        '{"a":[1]}',
    ]


def test_lists_of_dynamic_values_arrive_as_nested_json(stack: Stack) -> None:
    table = _query(
        stack,
        "range i from 1 to 3 step 1 | extend g = i % 2 "
        "| summarize Pairs = make_list(pack_array(i, strcat('v', tostring(i)))), Values = make_list(i) by g "
        "| order by g asc",
    ).tables[0]
    assert table.columns_types == ["long", "dynamic", "dynamic"]
    assert [[g, json.loads(pairs), json.loads(values)] for g, pairs, values in table.rows] == [
        [0, [[2, "v2"]], [2]],
        [1, [[1, "v1"], [3, "v3"]], [1, 3]],
    ]


def _track_old_and_recent(stack: Stack) -> dt.datetime:
    """Tokens 1 three days ago and 2 an hour ago; returns now."""
    now = dt.datetime.now(dt.UTC)
    old, recent = now - dt.timedelta(days=3), now - dt.timedelta(hours=1)
    assert stack.track(
        [stack.envelope(old, [_tokens(1, 1, 1, 1)]), stack.envelope(recent, [_tokens(2, 1, 2, 2)])]
    ).ok
    return now


def test_timespan_restricts_every_table_the_query_reads(stack: Stack) -> None:
    now = _track_old_and_recent(stack)
    total = "union AppMetrics, (customMetrics | extend Sum = value) | summarize s = sum(Sum)"

    assert _query(stack, total, timespan=dt.timedelta(days=1)).tables[0].rows[0][0] == 4.0  # 2 via each table
    assert _query(stack, total, timespan=None).tables[0].rows[0][0] == 6.0
    window = (now - dt.timedelta(days=4), now - dt.timedelta(days=2))
    assert _query(stack, "AppMetrics | project Sum", timespan=window).tables[0].rows[0][0] == 1.0
    start_and_duration = (now - dt.timedelta(days=4), dt.timedelta(hours=1))
    assert _query(stack, "AppMetrics", timespan=start_and_duration).tables[0].rows == []


def test_the_app_insights_resource_answers_with_its_own_tables_only(stack: Stack) -> None:
    _track_old_and_recent(stack)
    client = stack.query_client()
    resource_id = stack.config.app_resource_id
    total = "customMetrics | summarize s = sum(value)"
    assert client.query_resource(resource_id, total, timespan=dt.timedelta(days=1)).tables[0].rows[0][0] == 2.0
    assert client.query_resource(resource_id.upper(), total, timespan=None).tables[0].rows[0][0] == 3.0
    with pytest.raises(HttpResponseError, match="Failed to resolve table or column expression named 'AppMetrics'"):
        client.query_resource(resource_id, "AppMetrics | count", timespan=None)
    with pytest.raises(HttpResponseError, match="appi-other could not be found") as unknown:
        client.query_resource(resource_id.replace("appi-local", "appi-other"), total, timespan=None)
    assert unknown.value.status_code == 404
    # The workspace still sees its own tables on the same connection.
    assert _query(stack, "AppMetrics | count").tables[0].rows[0][0] == 2


def test_ago_uses_the_current_time(stack: Stack) -> None:
    now = dt.datetime.now(dt.UTC)
    assert stack.track([stack.envelope(now - dt.timedelta(minutes=30), [_tokens(5, 1, 5, 5)])]).ok
    rows = _query(stack, "AppMetrics | where TimeGenerated > ago(1h) | project Sum, n = now()").tables[0].rows
    assert rows[0][0] == 5.0
    assert abs(rows[0][1] - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=30)
    assert _query(stack, "AppMetrics | where TimeGenerated > ago(10m)").tables[0].rows == []


# -- query errors and limits -------------------------------------------------------------------


def test_kql_syntax_error_is_a_bad_argument_error(stack: Stack) -> None:
    with pytest.raises(HttpResponseError) as raised:
        _query(stack, "AppMetrics | wherex Name == 'x'")
    assert raised.value.status_code == 400
    assert "BadArgumentError" in str(raised.value) and "SyntaxError" in str(raised.value)


def test_unknown_column_is_a_semantic_error_naming_it(stack: Stack) -> None:
    with pytest.raises(HttpResponseError) as raised:
        _query(stack, "AppMetrics | where NoSuchColumn == 1")
    assert raised.value.status_code == 400
    assert "Failed to resolve scalar expression named 'NoSuchColumn'" in str(raised.value)


def test_unknown_workspace_is_not_found(stack: Stack) -> None:
    # LogsQueryClient re-raises every service error as a plain HttpResponseError.
    with pytest.raises(HttpResponseError) as raised:
        stack.query_client().query_workspace(str(uuid.uuid4()), "AppMetrics", timespan=None)
    assert raised.value.status_code == 404 and "WorkspaceNotFoundError" in str(raised.value)


def _partial_error_text(result: LogsQueryPartialResult) -> str:
    assert result.partial_error is not None and result.partial_error.details
    return " ".join(str(detail["innererror"]["message"]) for detail in result.partial_error.details)


def test_row_limit_gives_a_partial_result(make_stack: Any) -> None:
    stack: Stack = make_stack(max_rows=3)
    now = dt.datetime.now(dt.UTC)
    assert stack.track(
        [stack.envelope(now - dt.timedelta(seconds=i), [_tokens(i, 1, i, i)]) for i in range(5)]
    ).ok
    result = stack.query_client().query_workspace(
        stack.config.workspace_id, "AppMetrics | order by Sum asc | project Sum", timespan=None
    )
    assert isinstance(result, LogsQueryPartialResult)
    assert [row[0] for row in result.partial_data[0].rows] == [0.0, 1.0, 2.0]
    assert result.partial_error is not None and result.partial_error.code == "PartialError"
    assert "record count limit 3" in _partial_error_text(result)
    complete = _query(stack, "AppMetrics | summarize n = count()")
    assert complete.tables[0].rows[0][0] == 5


def test_size_limit_gives_a_partial_result(make_stack: Any) -> None:
    stack: Stack = make_stack(max_response_bytes=64 * 1024 + 200)
    result = stack.query_client().query_workspace(
        stack.config.workspace_id,
        "range i from 1 to 100 step 1 | extend pad = strrep('x', 20)",
        timespan=None,
    )
    assert isinstance(result, LogsQueryPartialResult)
    assert 0 < len(result.partial_data[0].rows) < 100
    assert "data size limit" in _partial_error_text(result)


def test_batch_queries_answer_in_request_order(stack: Stack) -> None:
    client = stack.query_client()
    results = client.query_batch(
        [
            LogsBatchQuery(stack.config.workspace_id, "print x = 1", timespan=None),
            LogsBatchQuery(stack.config.workspace_id, "print x = ", timespan=None),
        ]
    )
    assert isinstance(results[0], LogsQueryResult) and results[0].tables[0].rows[0][0] == 1
    assert getattr(results[1], "code", None) == "BadArgumentError"


# -- Logs Ingestion API ------------------------------------------------------------------------


def _summary_row(window_start: dt.datetime) -> dict[str, Any]:
    return {
        "TimeGenerated": dt.datetime.now(dt.UTC).isoformat(),
        "WindowStart": window_start.isoformat(),
        "WindowEnd": (window_start + dt.timedelta(hours=1)).isoformat(),
        "WindowMinutes": 60,
        "IsFinal": True,
        "Revision": dt.datetime.now(dt.UTC).isoformat(),
        "PriceVersion": "2025-01",
        "Deployment": "gpt-4o-mini",
        "Model": "gpt-4o-mini",
        "SubscriptionId": "team-a",
        "Requests": 12,
        "PromptTokens": 9_000_000_000,  # beyond 32 bits: a long is a long
        "TotalTokens": 9_000_000_100,
        "TotalCost": 1.25,
        "Currency": "USD",
        "Unpriced": False,
    }


def test_uploaded_rows_land_in_their_custom_table(stack: Stack) -> None:
    start = dt.datetime(2025, 1, 1, 10, tzinfo=dt.UTC)
    rows: list[MutableMapping[str, Any]] = [_summary_row(start + dt.timedelta(hours=i)) for i in range(3)]
    stack.ingestion_client().upload(stack.config.dcr_immutable_id, "Custom-TokenCostSummary_CL", rows)
    table = _query(
        stack,
        "TokenCostSummary_CL | order by WindowStart asc "
        "| project WindowStart, WindowMinutes, IsFinal, PromptTokens, TotalCost, Currency, UserId",
    ).tables[0]
    assert table.columns_types == ["datetime", "int", "bool", "long", "real", "string", "string"]
    assert [list(row) for row in table.rows] == [
        [start + dt.timedelta(hours=i), 60, True, 9_000_000_000, 1.25, "USD", None] for i in range(3)
    ]


def test_upload_chunks_larger_than_one_mebibyte(stack: Stack) -> None:
    row = {**_summary_row(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)), "ApiId": "x" * 500}
    rows: list[MutableMapping[str, Any]] = [dict(row) for _ in range(3000)]
    stack.ingestion_client().upload(stack.config.dcr_immutable_id, "Custom-TokenCostSummary_CL", rows)
    assert _query(stack, "TokenCostSummary_CL | count").tables[0].rows[0][0] == 3000


def test_unknown_stream_and_rule_are_rejected(stack: Stack) -> None:
    client = stack.ingestion_client()
    with pytest.raises(HttpResponseError) as raised:
        client.upload(
            stack.config.dcr_immutable_id, "Custom-Nope_CL", [{"TimeGenerated": "2025-01-01T00:00:00Z"}]
        )
    assert raised.value.status_code == 400 and "InvalidStream" in str(raised.value)
    with pytest.raises(ResourceNotFoundError):
        client.upload(
            "dcr-" + "0" * 32, "Custom-TokenCostSummary_CL", [_summary_row(dt.datetime.now(dt.UTC))]
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("NoSuchColumn", 1, "column 'NoSuchColumn' is not declared"),
        ("Requests", "twelve", "column 'Requests' (long)"),
        ("WindowMinutes", 2**40, "out of range"),
        ("IsFinal", "yes", "column 'IsFinal' (boolean)"),
        ("WindowStart", "last tuesday", "not an ISO 8601 date-time"),
    ],
)
def test_rows_that_do_not_fit_the_stream_are_rejected(
    stack: Stack, field: str, value: Any, message: str
) -> None:
    failures: list[LogsUploadError] = []
    good = _summary_row(dt.datetime.now(dt.UTC))
    stack.ingestion_client().upload(
        stack.config.dcr_immutable_id,
        "Custom-TokenCostSummary_CL",
        [good, {**good, field: value}],
        on_error=failures.append,
    )
    assert len(failures) == 1 and len(failures[0].failed_logs) == 2
    error = failures[0].error
    assert isinstance(error, HttpResponseError) and error.status_code == 400 and message in str(error)
    assert (
        _query(stack, "TokenCostSummary_CL | count").tables[0].rows[0][0] == 0
    )  # the chunk is all or nothing


# -- authentication and TLS ---------------------------------------------------------------------


class _FixedToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(dt.datetime.now(dt.UTC).timestamp()) + 3600)


def test_requests_without_a_valid_bearer_token_are_unauthorized(stack: Stack) -> None:
    anonymous = requests.post(
        f"{stack.url}/v1/workspaces/{stack.config.workspace_id}/query",
        json={"query": "print 1"},
        verify=stack.ca,
        timeout=10,
    )
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "AuthorizationRequiredError"

    foreign_token, _ = TokenSigner(secrets.token_hex(32)).issue(stack.url)
    wrong_audience, _ = TokenSigner(stack.config.identity_secret).issue("https://storage.azure.com")
    for token in ("not-a-token", foreign_token, wrong_audience):
        client = LogsQueryClient(_FixedToken(token), endpoint=f"{stack.url}/v1", connection_verify=stack.ca)
        with pytest.raises(HttpResponseError) as raised:
            client.query_workspace(stack.config.workspace_id, "print 1", timespan=None)
        assert raised.value.status_code == 401
        ingestion = LogsIngestionClient(stack.url, _FixedToken(token), connection_verify=stack.ca)
        with pytest.raises(ClientAuthenticationError):
            ingestion.upload(
                stack.config.dcr_immutable_id, "Custom-TokenCostSummary_CL", [{"Currency": "USD"}]
            )


def test_clients_that_do_not_trust_the_local_ca_refuse_the_server(stack: Stack) -> None:
    client = LogsQueryClient(ManagedIdentityCredential(), endpoint=f"{stack.url}/v1")
    with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        client.query_workspace(stack.config.workspace_id, "print 1", timespan=None)
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(f"{stack.url}/v2/track", data=b"[]", timeout=10)


def test_tls_material_is_reused_and_private(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path)
    ca_pem, server_pem = first.ca_cert.read_bytes(), first.server_cert.read_bytes()
    assert ensure_tls(tmp_path).ca_cert.read_bytes() == ca_pem
    assert first.server_cert.read_bytes() == server_pem
    assert first.ca_key.stat().st_mode & 0o777 == 0o600 and first.server_key.stat().st_mode & 0o777 == 0o600
    first.server_cert.unlink()
    renewed = ensure_tls(tmp_path)
    assert renewed.ca_cert.read_bytes() == ca_pem and renewed.server_cert.read_bytes() != server_pem
    context = renewed.client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


# -- App Insights track protocol details ----------------------------------------------------------


def test_track_rejects_unknown_ikey_and_reports_bad_envelopes_per_item(stack: Stack) -> None:
    now = dt.datetime.now(dt.UTC)
    foreign = {**stack.envelope(now, [_tokens(1, 1, 1, 1)]), "iKey": str(uuid.uuid4())}
    response = stack.track([foreign])
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"index": 0, "statusCode": 400, "message": "Invalid instrumentation key"}
    ]

    no_value = stack.envelope(now, [{"name": "Total Tokens"}])
    response = stack.track([stack.envelope(now, [_tokens(7, 1, 7, 7)]), no_value])
    assert response.status_code == 206
    assert response.json()["itemsAccepted"] == 1 and response.json()["errors"][0]["index"] == 1
    assert _query(stack, "AppMetrics | project Sum").tables[0].rows[0][0] == 7.0

    assert stack.track(b"{not json").status_code == 400


def test_track_accepts_gzip_newline_delimited_envelopes(stack: Stack) -> None:
    now = dt.datetime.now(dt.UTC)
    lines = "\n".join(json.dumps(stack.envelope(now, [_tokens(i, 1, i, i)])) for i in (1, 2))
    response = stack.track(
        gzip.compress(lines.encode()),
        **{"Content-Encoding": "gzip", "Content-Type": "application/x-json-stream"},
    )
    assert response.status_code == 200 and response.json()["itemsAccepted"] == 2
    assert _query(stack, "AppMetrics | summarize sum(Sum)").tables[0].rows[0][0] == 3.0


# -- store -----------------------------------------------------------------------------------------


def test_bulk_insert_loads_a_frame_in_one_append(stack: Stack) -> None:
    count = 200_000
    start = pd.Timestamp(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    frame = pd.DataFrame(
        {
            "TimeGenerated": pd.date_range(start, periods=count, freq="10ms"),
            "Name": ["Total Tokens"] * count,
            "Sum": [1.0] * count,
            "ItemCount": [1] * count,
            "Properties": ['{"User ID":"bulk"}'] * count,
        }
    )
    assert bulk_insert_app_metrics(stack.monitor.store, frame) == count
    row = _query(
        stack,
        "customMetrics | summarize n = count(), v = sum(value) by u = tostring(customDimensions['User ID'])",
    )
    assert list(row.tables[0].rows[0]) == ["bulk", count, float(count)]


def test_bulk_insert_into_a_closed_database_file(tmp_path: Path) -> None:
    path = tmp_path / "bench.duckdb"
    now = dt.datetime.now(dt.UTC)
    rows = (
        {"TimeGenerated": now, "Name": "Total Tokens", "Sum": float(i), "ItemCount": 1} for i in range(1000)
    )
    assert bulk_insert_app_metrics(path, rows, batch_rows=300) == 1000
    assert bulk_insert_app_metrics(path, []) == 0


# -- CLI ---------------------------------------------------------------------------------------------


def test_cli_prints_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    args = [
        sys.executable, "-m", "standins.monitor", "--port", "0", "--db", str(tmp_path / "m.duckdb"),
        "--tls-dir", str(tmp_path / "tls"), "--workspace-id", str(uuid.uuid4()),
        "--rule-id", "dcr-" + uuid.uuid4().hex, "--ikey", str(uuid.uuid4()),
    ]  # fmt: skip
    env = {**os.environ, "STANDINS_IDENTITY_SECRET": secrets.token_hex(32)}
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("READY https://127.0.0.1:"), line + (
            process.stderr.read() if process.stderr else ""
        )
        url = line.removeprefix("READY ")
        response = requests.post(
            f"{url}/v2/track", data=b"[]", verify=str(tmp_path / "tls" / "ca.pem"), timeout=10
        )
        assert response.status_code == 200 and response.json()["itemsReceived"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _append_while_writer_is_held(store: MonitorStore, frames: list[pd.DataFrame]) -> list[Any]:
    """Each frame appended from its own thread, all queued behind the write lock before it frees."""
    outcomes: list[Any] = [None] * len(frames)

    def append(index: int) -> None:
        try:
            outcomes[index] = store.insert_frame("TokenCostSummary_CL", frames[index])
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=append, args=(index,)) for index in range(len(frames))]
    with store._write_lock:
        for thread in threads:
            thread.start()
        while len(store._pending) < len(frames):
            threading.Event().wait(0.01)
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("with_bad_frame", [False, True])
def test_queued_appends_commit_together_and_fail_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_bad_frame: bool
) -> None:
    """Appends waiting for the write lock go in as one INSERT; a frame DuckDB refuses fails only its caller."""
    store = MonitorStore(tmp_path / "group.duckdb")
    inserts: list[int] = []
    append = store._append
    monkeypatch.setattr(store, "_append", lambda table, frame: (inserts.append(len(frame)), append(table, frame)))
    frames = [pd.DataFrame({"UserId": [f"u{n}"] * 3, "Requests": [n] * 3}) for n in range(4)]
    if with_bad_frame:
        frames.append(pd.DataFrame({"UserId": ["bad"], "Requests": ["not a number"]}))
    try:
        outcomes = _append_while_writer_is_held(store, frames)
        assert outcomes[:4] == [3, 3, 3, 3]
        rows = store.sql('SELECT UserId, count(*) FROM "TokenCostSummary_CL" GROUP BY ALL ORDER BY 1')
        assert rows == [("u0", 3), ("u1", 3), ("u2", 3), ("u3", 3)]
        if with_bad_frame:
            assert isinstance(outcomes[4], duckdb.Error)
            assert inserts == [13, 3, 3, 3, 3, 1]  # the group refused as a whole, then each alone
        else:
            assert inserts == [12]
    finally:
        store.close()


def test_concurrent_queries_and_ingestion_all_complete(stack: Stack) -> None:
    now = dt.datetime.now(dt.UTC)
    client = stack.query_client()

    def post(i: int) -> int:
        return stack.track([stack.envelope(now, [_tokens(1, 1, 1, 1)]) for _ in range(10)]).status_code

    def query(i: int) -> int:
        hour = dt.timedelta(hours=1)
        result = client.query_workspace(stack.config.workspace_id, "AppMetrics | count", timespan=hour)
        assert isinstance(result, LogsQueryResult)
        return int(result.tables[0].rows[0][0])

    with ThreadPoolExecutor(max_workers=8) as pool:
        posts = pool.map(post, range(20))
        counts = list(pool.map(query, range(20)))
        assert set(posts) == {200}
    assert all(0 <= count <= 200 for count in counts)
    assert query(0) == 200


# -- bulk paths: the same answers as cell by cell -----------------------------------------------


def _cost_table() -> Any:
    table = load_schema().table("TokenCostSummary_CL")
    assert table is not None
    return table


def test_column_coercion_in_bulk_equals_cell_by_cell() -> None:
    table = _cost_table()
    columns: dict[str, list[Any]] = {
        "WindowStart": ["2025-01-01T10:00:00Z", None, "2025-01-01T10:00:00.1234567Z", "2025-01-01T10:00:00Z"],
        "PriceVersion": ["v1", "v1", None, "v2"],
        "WindowMinutes": [60, None, 60.0, -(2**31)],  # an integral float is an int, as one value
        "RevisionRows": [2**62, 0, None, -1],
        "TotalCost": [1.25, 3, None, 0.0],  # an int in a real column becomes a float
        "IsFinal": [True, False, None, True],
    }
    for name, values in columns.items():
        column = table.column(name)
        assert coerce_column(column, values) == [coerce(column, value) for value in values], name
    for name, bad in (("RevisionRows", [1, True]), ("WindowMinutes", [1, 2**40]), ("TotalCost", [1.0, "1"]),
                      ("WindowStart", ["2025-01-01", "later"]), ("IsFinal", [True, 1])):
        with pytest.raises(ValueTypeError):
            coerce_column(table.column(name), bad)


def test_bulk_validation_gives_the_rows_cell_by_cell_validation_gives() -> None:
    table, now = _cost_table(), dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    rows = [_summary_row(dt.datetime(2025, 1, 1, hour, tzinfo=dt.UTC)) for hour in range(5)]
    rows[1].pop("TimeGenerated")  # gets the ingestion time
    rows[2]["UserId"] = None
    expected = _columns_of_checked_rows(table, _check_rows(table, "s", rows), now)
    assert validate_rows(table, "s", rows, now) == expected
    assert expected["TimeGenerated"][1] == now and expected["UserId"] == [None, None, None, None, None]


@pytest.mark.parametrize(
    "rows",
    [
        [{"UserId": "a", "ApiId": "x"}, {"UserId": "b", "Model": "m"}],  # as many keys, other ones
        [{"UserId": "a"}, {"UserId": "b"}],
        [{"UserId": "a", "ApiId": "x"}, {"ApiId": "y", "UserId": "b"}],  # same keys, other order
    ],
)
def test_bulk_validation_of_rows_with_differing_keys(rows: list[dict[str, Any]]) -> None:
    table, now = _cost_table(), dt.datetime(2025, 1, 2, tzinfo=dt.UTC)
    assert validate_rows(table, "s", rows, now) == _columns_of_checked_rows(table, _check_rows(table, "s", rows), now)


@pytest.mark.parametrize(
    ("later", "message"),
    [
        ({"NoSuchColumn": 1}, "row 1: column 'Requests' (long)"),
        ({"WindowStart": "last tuesday"}, "row 1: column 'Requests' (long)"),
    ],
)
def test_bulk_validation_still_names_the_first_bad_row(later: dict[str, Any], message: str) -> None:
    """Checked column by column, but the error is the first bad cell in row order, as before."""
    table = _cost_table()
    rows = [_summary_row(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) for _ in range(4)]
    rows[1]["Requests"] = "twelve"
    rows[3].update(later)  # a later row, and a column checked (in bulk) before or after Requests
    with pytest.raises(RowError, match=re.escape(message)):
        validate_rows(table, "s", rows, dt.datetime.now(dt.UTC))
    with pytest.raises(RowError, match="row 2 is not a JSON object"):
        validate_rows(table, "s", [rows[0], rows[0], "x"], dt.datetime.now(dt.UTC))


def test_wire_rows_in_bulk_equal_the_per_value_wire_form() -> None:
    when = dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)
    result = QueryResult(
        columns=(("d", "datetime"), ("s", "string"), ("l", "long"), ("r", "real"), ("b", "bool"), ("j", "dynamic")),
        rows=[
            (when, "x", 2, 1.5, True, '{"a":1}'),
            (when, None, None, None, None, None),
            (when + dt.timedelta(hours=1), b"\x00\x01", 2**64, float("nan"), False, [1, 2]),
            (dt.datetime(2024, 5, 1, 12), "y", -(2**63), float("-inf"), True, {"b": None}),
        ],
        truncated=False,
    )
    converters = [_CONVERTERS.get(kind) for _, kind in result.columns]
    expected = [
        [
            value if value is None or convert is None else convert(value)
            for value, convert in zip(row, converters, strict=True)
        ]
        for row in result.rows
    ]
    assert [list(row) for row in wire_rows(result)] == expected
    plain = QueryResult(columns=(("s", "string"), ("l", "long")), rows=[("a", 1), ("b", None)], truncated=False)
    assert wire_rows(plain) is plain.rows  # already in wire form: not copied


def test_query_statistics_and_batch_bodies_are_one_json_document(stack: Stack) -> None:
    client = stack.query_client()
    result = client.query_workspace(
        stack.config.workspace_id, "range i from 1 to 3 step 1", timespan=None, include_statistics=True
    )
    assert isinstance(result, LogsQueryResult) and [row[0] for row in result.tables[0].rows] == [1, 2, 3]
    assert result.statistics is not None and result.statistics["query"]["datasetStatistics"][0]["tableRowCount"] == 3
