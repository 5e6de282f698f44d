"""shared/logs/query.py: the one way an answer is judged. A partial result, a table without the expected
columns and an SDK error each become a QueryError naming the query and what went wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.monitor.query import LogsQueryStatus

from shared.errors import QueryError
from shared.logs.query import PartialResultError, query_table
from tests.support.azure_errors import http_error

START = datetime(2026, 11, 27, tzinfo=UTC)
SPAN = (START, START + timedelta(hours=1))
COLUMNS = ("Day", "SubscriptionId", "CostMicros")


class Answering:
    """A LogsQueryClient that gives one answer (or raises one error) and records how it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    def query_workspace(self, workspace_id: str, query: str, **kwargs: Any) -> Any:
        return self._answer("workspace " + workspace_id, query, kwargs)

    def query_resource(self, resource_id: str, query: str, **kwargs: Any) -> Any:
        return self._answer("resource " + resource_id, query, kwargs)

    def _answer(self, target: str, query: str, kwargs: dict[str, Any]) -> Any:
        self.asked.append((target, query, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def table(columns: tuple[str, ...], rows: list[list[Any]]) -> Any:
    return SimpleNamespace(
        status=LogsQueryStatus.SUCCESS, tables=[SimpleNamespace(columns=list(columns), rows=rows)], partial_error=None
    )


def partial(code: str, message: str) -> Any:
    error = SimpleNamespace(code=code, message=message, details=None)
    return SimpleNamespace(status=LogsQueryStatus.PARTIAL, partial_error=error, partial_data=[])


def test_a_complete_answer_with_the_expected_columns_is_its_rows() -> None:
    client = Answering(table(COLUMNS, [[START, "team-a", 5], [START, "team-b", 7]]))
    rows = query_table(client, "ws", "totals query", "T | take 2", SPAN, COLUMNS)  # type: ignore[arg-type]
    assert rows == [[START, "team-a", 5], [START, "team-b", 7]]
    # Without a server timeout the API's default applies: nothing is sent for it.
    assert client.asked == [("workspace ws", "T | take 2", {"timespan": SPAN})]


def test_a_resource_is_asked_instead_of_the_workspace_with_the_server_timeout() -> None:
    client = Answering(table(COLUMNS, []))
    query_table(client, "ws", "q", "T", SPAN, COLUMNS, resource_id="/subscriptions/s/app", server_timeout_seconds=600)  # type: ignore[arg-type]
    assert client.asked == [("resource /subscriptions/s/app", "T", {"timespan": SPAN, "server_timeout": 600})]


def test_a_partial_result_is_a_query_error_naming_the_query_and_the_partial_error() -> None:
    client = Answering(partial("PartialError", "Query execution has exceeded the allowed limits (timeout)"))
    with pytest.raises(QueryError) as caught:
        query_table(client, "ws", "month-to-date cost totals query", "T", SPAN, COLUMNS, attempts=1)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "month-to-date cost totals query returned a partial result: "
        "PartialError: Query execution has exceeded the allowed limits (timeout)"
    )
    assert isinstance(caught.value, PartialResultError) and not caught.value.size_limit


def test_a_partial_result_at_the_size_limit_says_so() -> None:
    client = Answering(partial("-2133196797", "E_QUERY_RESULT_SET_TOO_LARGE: more than 500000 rows"))
    with pytest.raises(PartialResultError) as caught:
        query_table(client, "ws", "token usage query", "T", SPAN, COLUMNS)  # type: ignore[arg-type]
    assert caught.value.size_limit and "E_QUERY_RESULT_SET_TOO_LARGE" in str(caught.value)
    assert len(client.asked) == 1  # never asked again as it is: only smaller parts can answer (shared/logs/parts.py)


def test_a_partial_result_without_details_still_says_partial() -> None:
    client = Answering(SimpleNamespace(status=LogsQueryStatus.PARTIAL, partial_error=None))
    with pytest.raises(QueryError, match=r"^alert data query returned a partial result: no error details$"):
        query_table(client, "ws", "alert data query", "T", SPAN, COLUMNS, attempts=1)  # type: ignore[arg-type]


def test_a_missing_column_is_a_query_error_naming_the_column() -> None:
    client = Answering(table(("Day", "CostMicros"), []))
    with pytest.raises(QueryError) as caught:
        query_table(client, "ws", "alert data query", "T", SPAN, COLUMNS)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "alert data query returned columns ['Day', 'CostMicros'], "
        "expected ['Day', 'SubscriptionId', 'CostMicros'] (missing SubscriptionId)"
    )
    assert not isinstance(caught.value, PartialResultError)


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        (("Day", "SubscriptionId", "CostMicros", "Extra"), "(unexpected Extra)"),
        (("Day", "Subscription", "CostMicros"), "(missing SubscriptionId; unexpected Subscription)"),
        (("SubscriptionId", "Day", "CostMicros"), "(same columns, another order)"),
    ],
)
def test_rows_are_read_by_position_so_any_other_columns_are_refused(columns: tuple[str, ...], said: str) -> None:
    with pytest.raises(QueryError) as caught:
        query_table(Answering(table(columns, [])), "ws", "q", "T", SPAN, COLUMNS)  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"q returned columns {list(columns)}, expected {list(COLUMNS)} ")
    assert str(caught.value).endswith(said)


def test_an_http_error_is_a_query_error_with_the_status_and_the_sdk_error_as_cause() -> None:
    sdk_error = http_error(429, "Too Many Requests", "ThrottledError", "Too many queries; slow down")
    with pytest.raises(QueryError) as caught:
        query_table(Answering(sdk_error), "ws", "alert data query", "T", SPAN, COLUMNS)  # type: ignore[arg-type]
    assert str(caught.value).startswith("alert data query failed: HTTP 429: ThrottledError: ")
    assert "Too many queries" in str(caught.value)
    assert caught.value.__cause__ is sdk_error
    assert not isinstance(caught.value, PartialResultError)


def test_a_bug_of_ours_is_not_dressed_up_as_a_query_error() -> None:
    with pytest.raises(KeyError):
        query_table(Answering(KeyError("a bug")), "ws", "q", "T", SPAN, COLUMNS)  # type: ignore[arg-type]


class AnsweringInTurn(Answering):
    """Gives its answers (or raises its errors) in turn, the last one again and again."""

    def __init__(self, *answers: Any) -> None:
        super().__init__(None)
        self.answers = list(answers)

    def _answer(self, target: str, query: str, kwargs: dict[str, Any]) -> Any:
        self.answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return super()._answer(target, query, kwargs)


def test_a_partial_answer_or_a_lost_connection_is_asked_again() -> None:
    from azure.core.exceptions import ServiceResponseError

    waits: list[float] = []
    client = AnsweringInTurn(partial("PartialError", "interrupted"), ServiceResponseError("connection aborted"),
                             table(COLUMNS, [[START, "team-a", 5]]))  # fmt: skip
    rows = query_table(client, "ws", "q", "T", SPAN, COLUMNS, sleep=waits.append)  # type: ignore[arg-type]
    assert rows == [[START, "team-a", 5]] and len(client.asked) == 3 and waits == [1.0, 2.0]


def test_partial_answers_every_time_say_how_many_times() -> None:
    client = AnsweringInTurn(partial("PartialError", "interrupted"))
    with pytest.raises(QueryError, match=r"^q returned a partial result 3 times: PartialError: interrupted$"):
        query_table(client, "ws", "q", "T", SPAN, COLUMNS, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(client.asked) == 3


def test_an_http_error_the_sdk_gave_up_on_is_not_asked_again() -> None:
    client = AnsweringInTurn(http_error(403, "Forbidden", "InsufficientAccessError", "no access"))
    with pytest.raises(QueryError):
        query_table(client, "ws", "q", "T", SPAN, COLUMNS, sleep=lambda _: None)  # type: ignore[arg-type]
    assert len(client.asked) == 1
