"""The error tree: every error the app raises on purpose is an AppError, and SDK errors are mapped.

An Azure SDK error raised by a query or upload surfaces as our QueryError / UploadError naming what
was asked and the HTTP status, with the SDK error kept as its cause; a bug of ours (any other
exception) is not dressed up as a service failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceModifiedError, ResourceNotFoundError, ServiceRequestError
from azure.monitor.query import LogsQueryStatus

from shared import errors
from shared.alerts.data import QUERY_COLUMNS as ALERT_QUERY_COLUMNS
from shared.alerts.data import SIZE_COLUMNS as ALERT_SIZE_COLUMNS
from shared.alerts.data import Ranges, read_alert_data
from shared.alerts.run import AlertDeliveryError
from shared.alerts.state import AlertRecord, TableAlertStateStore
from shared.costs.progress import TableProgressStore, WindowProgress
from shared.costs.query import usage_query
from shared.costs.run import CostUploadError
from shared.logs.parts import query_in_parts
from shared.logs.upload import UploadPolicy, upload_windows
from shared.traffic.upload import upload_ground_truth
from tests import ROOT
from tests.support.azure_errors import http_503
from tests.support.sections import cost_section

START = datetime(2026, 11, 27, tzinfo=UTC)
USAGE = usage_query(cost_section())  # the token usage query as the default settings ask it


class FailingQueryClient:
    """Answers `succeed` queries with an empty table of `columns` (or of each `answers` in turn), then raises
    `error`."""

    def __init__(
        self, error: Exception, *, succeed: int = 0, columns: tuple[str, ...] = (),
        answers: tuple[tuple[str, ...], ...] = (),
    ) -> None:  # fmt: skip
        self.error, self.succeed, self.answers = error, succeed, list(answers) or [columns] * succeed

    def query_workspace(self, workspace_id: str, query: str, **kwargs: Any) -> Any:
        if self.succeed > 0:
            self.succeed -= 1
            table = SimpleNamespace(columns=list(self.answers.pop(0)), rows=[])
            return SimpleNamespace(status=LogsQueryStatus.SUCCESS, tables=[table], partial_error=None)
        raise self.error

    query_resource = query_workspace


def test_the_tree_has_one_root_and_named_branches() -> None:
    assert issubclass(errors.ConfigError, errors.InputError)
    assert issubclass(errors.InputFileError, errors.InputError)
    assert issubclass(errors.KqlParameterError, errors.InputError)
    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.QueryError, errors.AzureServiceError)
    assert issubclass(errors.UploadError, errors.AzureServiceError)
    assert issubclass(CostUploadError, errors.UploadError)
    assert issubclass(AlertDeliveryError, errors.DeliveryError)
    for branch in (errors.InputError, errors.AzureServiceError, errors.DeliveryError):
        assert issubclass(branch, errors.AppError)


def test_http_error_of_the_usage_query_is_a_query_error_naming_query_part_and_status() -> None:
    sdk_error = http_503()
    with pytest.raises(errors.QueryError) as caught:
        query_in_parts(FailingQueryClient(sdk_error), "workspace", USAGE, START, START + timedelta(hours=2))  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("token usage query for 2026-11-27 00:00–2026-11-27 02:00 UTC failed: ")
    assert "HTTP 503: ServiceUnavailable" in message and "The service is busy" in message
    assert caught.value.__cause__ is sdk_error


def test_no_connection_is_a_query_error_naming_the_sdk_error() -> None:
    with pytest.raises(errors.QueryError, match=r"token usage query .* failed: ServiceRequestError: refused"):
        query_in_parts(
            FailingQueryClient(ServiceRequestError("refused")), "w", USAGE, START, START + timedelta(hours=1)  # type: ignore[arg-type]
        )


def test_http_error_of_the_alert_queries_is_a_query_error() -> None:
    ranges = Ranges(start=START, detail_from=START, end=START + timedelta(hours=1), traffic_start=START)
    with pytest.raises(errors.QueryError, match=r"^alert usage size query failed: HTTP 503"):
        read_alert_data(FailingQueryClient(http_503()), "w", ranges, with_traffic=True, now=START)  # type: ignore[arg-type]
    client = FailingQueryClient(http_503(), succeed=1, answers=(ALERT_SIZE_COLUMNS,))
    with pytest.raises(errors.QueryError, match=r"^alert usage query for .* failed: HTTP 503"):
        read_alert_data(client, "w", ranges, with_traffic=True, now=START)  # type: ignore[arg-type]
    # The usage answered, the synthetic-traffic query failed.
    client = FailingQueryClient(http_503(), succeed=2, answers=(ALERT_SIZE_COLUMNS, ALERT_QUERY_COLUMNS))
    with pytest.raises(errors.QueryError, match=r"^alert data query failed: HTTP 503: ServiceUnavailable"):
        read_alert_data(client, "w", ranges, with_traffic=True, now=START)  # type: ignore[arg-type]


def test_http_error_of_the_month_to_date_totals_is_a_query_error() -> None:
    from shared.costs.totals import stored_daily_totals

    with pytest.raises(errors.QueryError, match=r"^month-to-date cost totals query failed: HTTP 503"):
        stored_daily_totals(
            FailingQueryClient(http_503()), "w", START, START + timedelta(days=1), "month-to-date cost totals query"  # type: ignore[arg-type]
        )


class FailingIngestion:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def upload(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        raise self.error


def test_failed_ground_truth_upload_is_an_upload_error_naming_stream_and_status() -> None:
    client = FailingIngestion(http_503())
    with pytest.raises(errors.UploadError) as caught:
        upload_ground_truth(client, rule_id="dcr-1", stream_name="Custom-S", rows=[{"a": 1}], timeout_seconds=1,
                            sleep=lambda _: None)  # fmt: skip
    # Worded as every SDK error is (shared.errors.describe_azure_error): the HTTP status, then the service's code.
    assert "stream Custom-S of data collection rule dcr-1 failed after 3 attempts: HTTP 503: ServiceUnavailable" in str(
        caught.value
    )
    assert client.calls == 3  # sent again: a dropped connection may have lost the rows, or not (readers count once)


def test_ground_truth_sent_again_after_a_dropped_connection_arrives() -> None:
    class DropsFirst(FailingIngestion):
        def upload(self, *args: Any, **kwargs: Any) -> None:
            self.calls += 1
            if self.calls == 1:
                raise self.error

    client = DropsFirst(ServiceRequestError("connection reset"))
    upload_ground_truth(client, rule_id="d", stream_name="s", rows=[{"a": 1}], timeout_seconds=1, sleep=lambda _: None)
    assert client.calls == 2


def test_a_bug_in_the_upload_path_is_not_reported_as_an_upload_failure() -> None:
    with pytest.raises(TypeError, match="a bug"):
        upload_ground_truth(
            FailingIngestion(TypeError("a bug")), rule_id="d", stream_name="s", rows=[{"a": 1}], timeout_seconds=1
        )


@pytest.mark.parametrize("error", [http_503(), ServiceRequestError("refused"), ConnectionResetError("reset")])
def test_failed_cost_rows_are_retried_then_reported_failed(error: Exception) -> None:
    client = FailingIngestion(error)
    policy = UploadPolicy("cost summary", "dcr", "s", chunk_rows=5000, attempts=2, retry_delay_seconds=0, concurrency=1)
    report = upload_windows(client, policy, [(START, ['{"a": 1}'])], sleep=lambda _: None)  # type: ignore[arg-type]
    assert (client.calls, report.retries, report.windows_failed) == (2, 1, [START])
    assert report.problems == ["window 2026-11-27 00:00: 1 of 1 rows not accepted"]


def test_a_bug_in_the_cost_upload_is_not_retried_as_a_failed_request() -> None:
    client = FailingIngestion(KeyError("a bug"))
    policy = UploadPolicy("cost summary", "dcr", "s", chunk_rows=5000, attempts=3, retry_delay_seconds=5, concurrency=1)
    with pytest.raises(KeyError):
        upload_windows(client, policy, [(START, ['{"a": 1}'])], sleep=lambda _: None)  # type: ignore[arg-type]
    assert client.calls == 1


class FailingTable:
    """A TableClient whose every call fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return call


def test_table_store_failures_are_azure_service_errors_naming_what_was_done() -> None:
    progress = TableProgressStore(FailingTable(http_503()), "scope")  # type: ignore[arg-type]
    with pytest.raises(errors.AzureServiceError, match=r"^reading the costs progress failed: HTTP 503"):
        progress.windows(START)
    with pytest.raises(errors.AzureServiceError, match=r"^saving the costs progress failed: HTTP 503"):
        progress.save([WindowProgress(START, True, START, "1:x", 1)], START)
    state = TableAlertStateStore(FailingTable(http_503()))  # type: ignore[arg-type]
    with pytest.raises(errors.AzureServiceError, match=r"^reading the alert state failed: HTTP 503"):
        state.load()
    record = AlertRecord(key="k", rule="r", member="m")
    with pytest.raises(errors.AzureServiceError, match=r"^writing the alert state failed: HTTP 503") as caught:
        state.write(record)
    assert isinstance(caught.value.__cause__, HttpResponseError)


def test_errors_the_stores_handle_themselves_stay_inside() -> None:
    assert TableProgressStore(FailingTable(ResourceNotFoundError("no row")), "s").final_through() is None  # type: ignore[arg-type]
    state = TableAlertStateStore(FailingTable(ResourceModifiedError("etag")))  # type: ignore[arg-type]
    assert state.write(AlertRecord(key="k", rule="r", member="m", etag="W/1")) is None


def _exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in shared/, by qualified name (private ones are control flow)."""
    import importlib
    import inspect

    found: dict[str, type[BaseException]] = {}
    for path in sorted((ROOT / "shared").rglob("*.py")):
        dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(dotted)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_of_the_app_is_on_the_tree_and_drawn_in_its_docstring() -> None:
    classes = _exception_classes()
    assert "shared.errors.QueryError" in classes  # the walk found the tree itself
    public = {name: cls for name, cls in classes.items() if not name.rpartition(".")[2].startswith("_")}
    off_tree = sorted(name for name, cls in public.items() if not issubclass(cls, errors.AppError))
    assert off_tree == []
    undrawn = sorted(name for name, cls in public.items() if cls.__name__ not in (errors.__doc__ or ""))
    assert undrawn == []
