"""Each injected fault (standins/chaos.py) has the service's shape, and the client the app uses reacts as it
must: retries what is transient, refuses a partial answer, lands rows twice after a drop behind an accepted
call, sees a refused or half-finished SMTP transaction, and late metric rows leave late.

Shapes are checked with rate 1.0 and clients whose retries are off; reactions with a seed whose first draw
faults and whose second does not, so one retry meets a healthy service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import random
import smtplib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.communication.email import EmailClient
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from azure.identity import ManagedIdentityCredential
from azure.monitor.ingestion import LogsIngestionClient
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult

from shared.azure_clients import AzureAccess
from shared.errors import QueryError
from shared.logs.query import PartialResultError, query_table
from shared.logs.upload import UploadPolicy, gzip_body, upload_windows
from standins.acs_email import AcsEmailConfig, RunningAcsEmail, start_acs_email
from standins.arm import ArmDeployment, RunningArm
from standins.arm_metrics import METRICS_API_VERSION
from standins.chaos import Chaos, count_injected
from standins.cost_management import API_VERSION as COST_API_VERSION
from standins.cost_management import QPU_RETRY_HEADER
from standins.gateway.metrics import MetricsExporter
from standins.gateway.sinks import InMemorySink
from standins.mail import MailConfig, start_mail
from standins.monitor import MonitorConfig, RunningMonitor, start_monitor
from standins.tls import ensure_tls
from tests.support.arm import MODEL_ACCOUNT, TEST_ACCOUNT, arm_client
from tests.support.chaos import write_plan
from tests.support.loop import LoopThread
from tests.support.monitor import fresh_monitor_config

STREAM = "Custom-TokenCostSummary_CL"
SENDER = "DoNotReply@contoso.test"
ROWS = 6


def seed_faulting_first(point: str, rate: float = 0.5) -> int:
    """A seed whose first draw for `point` is a fault (below `rate`) and whose second is not."""
    for seed in range(10_000):
        draws = random.Random(f"{seed}:{point}")
        if draws.random() < rate <= draws.random():
            return seed
    raise AssertionError("no such seed")


def fault_then_healthy(point: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"seed": seed_faulting_first(point), "retry_after_seconds": 0, **extra, "faults": {point: {kind: 0.5}}}


def always(point: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"seed": 1, **extra, "faults": {point: {kind: 1.0}}}


# -- Azure Monitor: query and Logs Ingestion ----------------------------------------------------------


@dataclass
class Monitor:
    """A monitor stand-in with its chaos control file."""

    running: RunningMonitor
    config: MonitorConfig
    control: Path

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def ca(self) -> str:
        return str(self.running.ca_path)


@pytest.fixture
def make_monitor(
    loop_thread: LoopThread, app_identity: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], Monitor]]:
    started: list[Monitor] = []

    def make(plan: dict[str, Any]) -> Monitor:
        directory = tmp_path / f"monitor-{len(started)}"
        directory.mkdir()
        control = write_plan(directory / "chaos.json", plan)
        config = fresh_monitor_config(directory, app_identity, chaos_file=control)
        monitor = Monitor(loop_thread.run(start_monitor(config)), config, control)
        started.append(monitor)
        return monitor

    yield make
    for monitor in started:
        loop_thread.run(monitor.running.stop())


def _rows(count: int = ROWS) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return [
        {
            "TimeGenerated": now.isoformat(), "WindowStart": (start + dt.timedelta(hours=i)).isoformat(),
            "WindowEnd": (start + dt.timedelta(hours=i + 1)).isoformat(), "WindowMinutes": 60, "IsFinal": True,
            "Revision": now.isoformat(), "PriceVersion": "2025-01", "Deployment": "gpt-4o-mini",
            "Model": "gpt-4o-mini", "SubscriptionId": "team-a", "Requests": 1, "PromptTokens": 10,
            "TotalTokens": 12, "TotalCost": 0.5, "Currency": "USD", "Unpriced": False,
        }
        for i in range(count)
    ]  # fmt: skip


def _app_access(monitor: Monitor) -> AzureAccess:
    return AzureAccess(client_id=None, ca_bundle=monitor.running.ca_path)


def _raw_query_client(monitor: Monitor) -> LogsQueryClient:
    return LogsQueryClient(
        ManagedIdentityCredential(), endpoint=monitor.url, connection_verify=monitor.ca, retry_total=0
    )


def _raw_ingestion_client(monitor: Monitor) -> LogsIngestionClient:
    return LogsIngestionClient(monitor.url, ManagedIdentityCredential(), connection_verify=monitor.ca, retry_total=0)


def _seed_rows(monitor: Monitor) -> None:
    """Rows in, through a point the plan leaves alone (only monitor.query faults in these plans)."""
    _raw_ingestion_client(monitor).upload(monitor.config.dcr_immutable_id, STREAM, list(_rows()))


_QUERY = "TokenCostSummary_CL | project WindowStart, TotalCost | order by WindowStart asc"
_COLUMNS = ("WindowStart", "TotalCost")


def _timespan() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)


def _app_query(monitor: Monitor, *, attempts: int = 3) -> list[Any]:
    client = _app_access(monitor).logs_query_client(monitor.url)
    return query_table(client, monitor.config.workspace_id, "chaos test query", _QUERY, _timespan(), _COLUMNS,
                       attempts=attempts, sleep=lambda _: None)  # fmt: skip


def _raw_query(monitor: Monitor) -> Any:
    return _raw_query_client(monitor).query_workspace(monitor.config.workspace_id, _QUERY, timespan=_timespan())


def _stored_rows(monitor: Monitor) -> int:
    """Through the query API, which these plans leave alone (only monitor.ingestion faults)."""
    result = _raw_query_client(monitor).query_workspace(
        monitor.config.workspace_id, "TokenCostSummary_CL | count", timespan=_timespan()
    )
    return int(result.tables[0].rows[0][0])


@pytest.mark.parametrize(("kind", "code"), [("500", "InternalServerError"), ("503", "ServiceUnavailableError")])
def test_query_server_errors_have_the_error_object_and_are_retried(
    make_monitor: Callable[[dict[str, Any]], Monitor], kind: str, code: str
) -> None:
    monitor = make_monitor(always("monitor.query", kind))
    with pytest.raises(HttpResponseError) as caught:
        _raw_query(monitor)
    assert caught.value.status_code == int(kind)
    assert caught.value.response.json()["error"]["code"] == code

    healed = make_monitor(fault_then_healthy("monitor.query", kind))
    _seed_rows(healed)
    assert len(_app_query(healed)) == ROWS, "the SDK retried the 5xx and got the whole answer"
    assert count_injected(healed.control) == {("monitor.query", kind): 1}


def test_query_throttling_is_429_with_retry_after_and_is_honoured(
    make_monitor: Callable[[dict[str, Any]], Monitor],
) -> None:
    monitor = make_monitor(always("monitor.query", "429", retry_after_seconds=3))
    with pytest.raises(HttpResponseError) as caught:
        _raw_query(monitor)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "3"

    healed = make_monitor({**fault_then_healthy("monitor.query", "429"), "retry_after_seconds": 1})
    _seed_rows(healed)
    started = time.monotonic()
    assert len(_app_query(healed)) == ROWS
    assert time.monotonic() - started >= 1.0, "the SDK waited the Retry-After before asking again"


def test_a_partial_answer_is_cut_flagged_and_never_taken_as_the_whole(
    make_monitor: Callable[[dict[str, Any]], Monitor],
) -> None:
    monitor = make_monitor(always("monitor.query", "partial"))
    _seed_rows(monitor)
    result = _raw_query(monitor)
    assert isinstance(result, LogsQueryPartialResult)
    assert len(result.partial_data[0].rows) == ROWS // 2
    assert result.partial_error is not None and result.partial_error.code == "PartialError"
    with pytest.raises(PartialResultError) as caught:
        _app_query(monitor, attempts=1)
    assert not caught.value.size_limit, "not a result-set limit: the app asks again instead of splitting"
    # Asked again (shared/logs/query.py), every answer partial: it says how often, and never takes one.
    with pytest.raises(QueryError, match="chaos test query returned a partial result 3 times"):
        _app_query(monitor)
    assert count_injected(monitor.control) == {("monitor.query", "partial"): 5}


def test_a_timed_out_query_is_held_then_dropped_without_an_answer(
    make_monitor: Callable[[dict[str, Any]], Monitor],
) -> None:
    monitor = make_monitor(always("monitor.query", "timeout", timeout_seconds=1))
    started = time.monotonic()
    with pytest.raises(ServiceResponseError):
        _raw_query(monitor)
    assert time.monotonic() - started >= 1.0

    healed = make_monitor(fault_then_healthy("monitor.query", "timeout", timeout_seconds=1))
    _seed_rows(healed)
    # azure-core retries no POST whose connection dropped mid-answer (not idempotent): with one attempt the app's
    # query fails, naming the query and the drop, and takes nothing ...
    with pytest.raises(QueryError, match="chaos test query failed: ServiceResponseError") as caught:
        _app_query(healed, attempts=1)
    assert not isinstance(caught.value, PartialResultError)
    # ... and by default it asks again (a query reads and can be repeated) and gets it all in the same call.
    again = make_monitor(fault_then_healthy("monitor.query", "timeout", timeout_seconds=1))
    _seed_rows(again)
    assert len(_app_query(again)) == ROWS


def _upload_policy(rule_id: str) -> UploadPolicy:
    return UploadPolicy("chaos rows", rule_id, STREAM, chunk_rows=1000, attempts=3, retry_delay_seconds=0)


def _app_upload(monitor: Monitor, rows: list[dict[str, Any]]) -> Any:
    client = _app_access(monitor).logs_ingestion_client(monitor.url)
    window = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC), [json.dumps(row) for row in rows])
    return upload_windows(client, _upload_policy(monitor.config.dcr_immutable_id), [window])


@pytest.mark.parametrize(
    ("kind", "code"),
    [("500", "InternalServerError"), ("503", "ServiceUnavailableError"), ("429", "TooManyRequests"),
     ("413", "ContentLengthLimitExceeded")],
)  # fmt: skip
def test_ingestion_refusals_have_the_service_shape_and_the_rows_land_once_on_retry(
    make_monitor: Callable[[dict[str, Any]], Monitor], kind: str, code: str
) -> None:
    monitor = make_monitor(always("monitor.ingestion", kind, retry_after_seconds=2))
    body = io.BytesIO(gzip_body(json.dumps(_rows()).encode()))
    with pytest.raises(HttpResponseError) as caught:
        _raw_ingestion_client(monitor).upload(monitor.config.dcr_immutable_id, STREAM, body)
    assert caught.value.status_code == int(kind)
    assert caught.value.response.json() == {"error": {"code": code, "message": caught.value.response.json()["error"]
                                                      ["message"]}}  # fmt: skip
    assert ("Retry-After" in caught.value.response.headers) == (kind == "429")
    assert _stored_rows(monitor) == 0

    healed = make_monitor(fault_then_healthy("monitor.ingestion", kind))
    report = _app_upload(healed, _rows())
    assert report.windows_failed == [] and _stored_rows(healed) == ROWS


def test_a_drop_after_the_rows_were_accepted_lands_them_twice(
    make_monitor: Callable[[dict[str, Any]], Monitor],
) -> None:
    monitor = make_monitor(always("monitor.ingestion", "drop_after_accept"))
    body = io.BytesIO(gzip_body(json.dumps(_rows()).encode()))
    with pytest.raises(ServiceResponseError):
        _raw_ingestion_client(monitor).upload(monitor.config.dcr_immutable_id, STREAM, body)
    assert _stored_rows(monitor) == ROWS, "stored although the client saw the connection drop"

    healed = make_monitor(fault_then_healthy("monitor.ingestion", "drop_after_accept"))
    report = _app_upload(healed, _rows())
    assert report.windows_failed == []
    assert _stored_rows(healed) == 2 * ROWS, "at-least-once: the retry landed the rows again"
    assert count_injected(healed.control) == {("monitor.ingestion", "drop_after_accept"): 1}


# -- ACS Email ----------------------------------------------------------------------------------------


@pytest.fixture
def make_acs(
    loop_thread: LoopThread, app_identity: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, Any]], RunningAcsEmail]]:
    started: list[RunningAcsEmail] = []

    def make(plan: dict[str, Any]) -> RunningAcsEmail:
        directory = tmp_path / f"acs-{len(started)}"
        directory.mkdir()
        config = AcsEmailConfig(
            outbox_dir=directory / "outbox", tls_dir=tmp_path / "tls", identity_secret=app_identity,
            sender_domains=("contoso.test",), chaos_file=write_plan(directory / "chaos.json", plan),
        )  # fmt: skip
        running = loop_thread.run(start_acs_email(config))
        started.append(running)
        return running

    yield make
    for running in started:
        loop_thread.run(running.stop())


def _email_body() -> dict[str, Any]:
    return {
        "senderAddress": SENDER,
        "content": {"subject": "Budget 80% reached", "plainText": "Spent 80 of 100."},
        "recipients": {"to": [{"address": "oncall@contoso.test"}]},
    }


@pytest.mark.parametrize(("kind", "code"), [("500", "InternalServerError"), ("503", "ServiceUnavailable")])
def test_acs_send_5xx_reaches_the_poller_and_a_retry_sends_once(
    make_acs: Callable[[dict[str, Any]], RunningAcsEmail], kind: str, code: str
) -> None:
    acs = make_acs(always("acs.send", kind))
    client = EmailClient(acs.url, ManagedIdentityCredential(), connection_verify=str(acs.ca_path), retry_total=0)
    with pytest.raises(HttpResponseError) as caught:
        client.begin_send(_email_body())
    assert caught.value.status_code == int(kind)
    assert caught.value.response.json()["error"]["code"] == code
    assert caught.value.response.headers["x-ms-error-code"] == code
    assert acs.service.messages() == []

    healed = make_acs(fault_then_healthy("acs.send", kind))
    client = EmailClient(healed.url, ManagedIdentityCredential(), connection_verify=str(healed.ca_path))
    assert client.begin_send(_email_body()).result()["status"] == "Succeeded"
    assert len(healed.service.messages()) == 1


def test_scripted_refusals_come_before_injected_faults(make_acs: Callable[[dict[str, Any]], RunningAcsEmail]) -> None:
    acs = make_acs(always("acs.send", "500"))
    acs.service.refuse_next_send(429, retry_after_seconds=1)
    client = EmailClient(acs.url, ManagedIdentityCredential(), connection_verify=str(acs.ca_path), retry_total=0)
    statuses = []
    for _ in range(2):
        with pytest.raises(HttpResponseError) as caught:
            client.begin_send(_email_body())
        statuses.append(caught.value.status_code)
    assert statuses == [429, 500]
    assert count_injected(acs.ca_path.parent.parent / "acs-0" / "chaos.json") == {("acs.send", "500"): 1}


# -- ARM: deployments, metrics, Cost Management ------------------------------------------------------


def _arm_with(make_arm: Callable[..., RunningArm], tmp_path: Path, plan: dict[str, Any], name: str) -> RunningArm:
    directory = tmp_path / name
    directory.mkdir()
    deployments = [ArmDeployment("gpt-4o-mini", "gpt-4o-mini", "2024-07-18")]
    return make_arm(deployments, chaos_file=write_plan(directory / "chaos.json", plan))


def _arm_token() -> str:
    return ManagedIdentityCredential().get_token("https://management.azure.com/.default").token


@pytest.mark.parametrize(("kind", "code"), [("500", "InternalServerError"), ("429", "TooManyRequests")])
def test_arm_reads_fail_or_throttle_as_arm_does_and_the_app_client_retries(
    make_arm: Callable[..., RunningArm], tmp_path: Path, kind: str, code: str
) -> None:
    arm = _arm_with(make_arm, tmp_path, always("arm", kind, retry_after_seconds=4), "always")
    with pytest.raises(HttpResponseError) as caught:
        list(arm_client(arm, retry_total=0).deployments.list(MODEL_ACCOUNT.resource_group, MODEL_ACCOUNT.name))
    assert caught.value.status_code == int(kind)
    assert caught.value.response.json()["error"]["code"] == code
    assert caught.value.response.headers.get("Retry-After") == ("4" if kind == "429" else None)
    headers = {"Authorization": f"Bearer {_arm_token()}"}
    metrics = requests.get(
        f"{arm.url}{TEST_ACCOUNT.resource_id}/providers/Microsoft.Insights/metrics",
        params={"api-version": METRICS_API_VERSION}, headers=headers, verify=str(arm.ca_path), timeout=10,
    )  # fmt: skip
    assert metrics.status_code == int(kind) and metrics.json()["error"]["code"] == code
    cost = requests.post(
        f"{arm.url}/subscriptions/{TEST_ACCOUNT.subscription_id}/providers/Microsoft.CostManagement/query",
        params={"api-version": COST_API_VERSION}, json={}, headers=headers, verify=str(arm.ca_path), timeout=10,
    )  # fmt: skip
    assert cost.status_code == int(kind)
    if kind == "429":  # Cost Management names its wait in its own header
        assert cost.headers[QPU_RETRY_HEADER] == "4"

    healed = _arm_with(make_arm, tmp_path, fault_then_healthy("arm", kind), "healed")
    listed = list(arm_client(healed).deployments.list(MODEL_ACCOUNT.resource_group, MODEL_ACCOUNT.name))
    assert [item.name for item in listed] == ["gpt-4o-mini"]


# -- SMTP ---------------------------------------------------------------------------------------------


def _send_over_smtp(tmp_path: Path, plan: dict[str, Any]) -> tuple[Exception | None, list[Path], Path]:
    tls = ensure_tls(tmp_path / "tls")
    control = write_plan(tmp_path / "chaos.json", plan)
    config = MailConfig(
        outbox_dir=tmp_path / "outbox", username="alerts", password="pw",
        tls_cert=tls.server_cert, tls_key=tls.server_key, chaos_file=control,
    )  # fmt: skip
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alerts@contoso.test", "oncall@contoso.test", "Budget"
    message["Message-ID"] = "<budget-80@contoso.test>"
    message.set_content("Spent 80 of 100.\n")
    with start_mail(config) as mail:
        try:
            with smtplib.SMTP(mail.host, mail.port, timeout=10) as smtp:
                smtp.starttls(context=tls.client_context())
                smtp.login("alerts", "pw")
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            return error, mail.messages(), control
        return None, mail.messages(), control


def test_smtp_refuse_is_a_transient_reply_and_nothing_is_stored(tmp_path: Path) -> None:
    error, stored, control = _send_over_smtp(tmp_path, always("smtp", "refuse"))
    assert isinstance(error, smtplib.SMTPSenderRefused) and error.smtp_code == 451
    assert stored == []
    assert count_injected(control) == {("smtp", "refuse"): 1}


def test_smtp_drop_after_data_stores_the_message_but_the_client_sees_a_failure(tmp_path: Path) -> None:
    error, stored, control = _send_over_smtp(tmp_path, always("smtp", "drop_after_data"))
    assert isinstance(error, smtplib.SMTPServerDisconnected)
    assert len(stored) == 1 and stored[0].name.endswith("-budget-80_contoso.test.eml")
    assert count_injected(control) == {("smtp", "drop_after_data"): 1}


def test_smtp_without_faults_delivers(tmp_path: Path) -> None:
    error, stored, control = _send_over_smtp(tmp_path, {"faults": {}})
    assert error is None and len(stored) == 1 and count_injected(control) == {}


@pytest.mark.parametrize(("kind", "maybe_delivered"), [("drop_after_data", True), ("refuse", False)])
def test_the_app_s_smtp_transport_tells_a_lost_connection_from_a_refusal(
    tmp_path: Path, kind: str, maybe_delivered: bool
) -> None:
    """A connection lost after DATA may follow the relay's acceptance (the message is in the outbox): the alert run
    must treat it as maybe delivered (shared/alerts/run.py); a 451 reply is a definite "not sent"."""
    from shared.email.delivery import SmtpTransport
    from shared.errors import DeliveryError

    tls = ensure_tls(tmp_path / "tls")
    control = write_plan(tmp_path / "chaos.json", always("smtp", kind))
    config = MailConfig(outbox_dir=tmp_path / "outbox", username="alerts", password="pw", tls_cert=tls.server_cert,
                        tls_key=tls.server_key, chaos_file=control)  # fmt: skip
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alerts@contoso.test", "oncall@contoso.test", "Budget"
    message.set_content("Spent 80 of 100.\n")
    with start_mail(config) as mail:
        transport = SmtpTransport(mail.host, mail.port, "alerts", "pw", True, str(tls.ca_cert))
        with pytest.raises(DeliveryError) as caught:
            transport.send(message, ["oncall@contoso.test"])
        assert caught.value.maybe_delivered is maybe_delivered and len(mail.messages()) == int(maybe_delivered)


# -- the gateway's metric export ----------------------------------------------------------------------


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_late_metric_rows_leave_only_late_minutes_later(tmp_path: Path) -> None:
    control = write_plan(tmp_path / "chaos.json", always("gateway.metrics", "late", late_minutes=90))
    clock = Clock(dt.datetime(2026, 3, 2, 12, 0, 10, tzinfo=dt.UTC))
    sink = InMemorySink()
    exporter = MetricsExporter(sink, flush_seconds=60, clock=clock, chaos=Chaos(control))

    async def run() -> list[int]:
        exporter.record("AzureOpenAI", "Total Tokens", 120, {"Subscription ID": "team-a"})
        exported = []
        for step in (dt.timedelta(minutes=1), dt.timedelta(minutes=89, seconds=59), dt.timedelta(seconds=1)):
            clock.now += step
            exported.append(await exporter.flush_closed())
        return exported

    assert asyncio.run(run()) == [0, 0, 1], "held back at 12:01:10, sent at 13:31:10 (90 minutes later)"
    [row] = sink.rows
    assert row.minute == dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC) and row.total == 120
    assert count_injected(control) == {("gateway.metrics", "late"): 1}


def test_held_rows_leave_at_stop_and_a_flush_does_not_hurry_them(tmp_path: Path) -> None:
    control = write_plan(tmp_path / "chaos.json", always("gateway.metrics", "late"))
    clock = Clock(dt.datetime(2026, 3, 2, 12, 0, 10, tzinfo=dt.UTC))
    sink = InMemorySink()
    exporter = MetricsExporter(sink, flush_seconds=60, clock=clock, chaos=Chaos(control))

    async def run() -> tuple[int, int]:
        exporter.record("AzureOpenAI", "Prompt Tokens", 100, {})
        exporter.record("AzureOpenAI", "Completion Tokens", 20, {})
        flushed = await exporter.flush_all()
        held = len(exporter.held)
        await exporter.stop()
        return flushed, held

    assert asyncio.run(run()) == (0, 2)
    assert sorted(row.name for row in sink.rows) == ["Completion Tokens", "Prompt Tokens"]


def test_without_chaos_the_exporter_holds_nothing(tmp_path: Path) -> None:
    sink = InMemorySink()
    clock = Clock(dt.datetime(2026, 3, 2, 12, 0, 10, tzinfo=dt.UTC))
    exporter = MetricsExporter(sink, flush_seconds=60, clock=clock)

    async def run() -> int:
        exporter.record("AzureOpenAI", "Total Tokens", 5, {})
        return await exporter.flush_all()

    assert asyncio.run(run()) == 1 and exporter.held == ()
