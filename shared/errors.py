"""One root error for the app, a few named branches, and the one place Azure SDK errors are mapped.

    AppError                        anything the app raises on purpose; the message says what to fix
    ├── InputError (ValueError)     bad input: the message names the setting, or the file, line and field
    │   ├── ConfigError             an app setting (shared/config.py)
    │   ├── InputFileError          a JSON input file: personas, alert rules, price table, deployment map
    │   │                           (shared/json_input.py); `.problems` lists each file:line: field: problem
    │   ├── Invalid                 one value a check refuses (shared/json_input.py); caught where the
    │   │                           value is read and reported as one of the two above, never escapes
    │   ├── KqlParameterError       a value the KQL binder cannot render safely into a query
    │   └── KqlFileError            a shipped query file whose include line cannot be expanded
    ├── AzureServiceError (RuntimeError)  an Azure call failed after the SDK's retries
    │   ├── QueryError              a Log Analytics query gave no complete answer (error, partial result)
    │   │   └── PartialResultError  the answer was partial (shared/logs/query.py), which the parts runner
    │   │                           splits when it hit a size limit and otherwise retries
    │   ├── ServicePending          a read of the bypass check (the accounts' token metrics) or the bill
    │   │                           check (Cost Management) could not be completed within its budget
    │   │                           (shared/azure_retry.py); the check reports the comparison pending,
    │   │                           it never fails the costs timer
    │   └── UploadError             rows the Logs Ingestion API did not accept
    │       └── CostUploadError     some cost windows did not upload; carries the run's summary
    │                               (shared/costs/run.py), so the windows that did upload still alert
    └── DeliveryError (RuntimeError)  a notification (email, Teams, Slack, webhook) could not be handed over
        └── AlertDeliveryError      some digest was not delivered; carries the alerts run's summary
                                    (shared/alerts/run.py)

Bad input fails at start or at the file's first read; service errors fail the run loudly after the
parts that did complete were kept; delivery errors leave the notification pending for the next run.
Code that catches an SDK error turns it into one of these with `azure_service_error`, so callers
catch our tree, never azure.core's. Beyond the branches there are only the two subclasses that carry
a run summary, PartialResultError (which the parts runner tells from other query errors), ServicePending
(which the bypass and bill checks turn into a pending comparison) and the two
KQL ones (a bad value vs a bad file): no caller tells a usage query from an alert query, or a persona
file from a rules file. tests/test_errors.py checks that every exception class in shared/ is on this
tree and drawn here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError


class AppError(Exception):
    """Root of every error the app raises on purpose."""


class InputError(AppError, ValueError):
    """A setting or an input file holds something we cannot use."""


class ConfigError(InputError):
    """An app setting is missing or has a value we cannot use."""


@dataclass(frozen=True, slots=True)
class FileProblem:
    """One problem in an input file: where (file, line, column, field path) and what is wrong."""

    source: str  # the file as given (path or name)
    line: int | None  # 1-based; None when the problem is the file as a whole
    field: str  # a path into the document, e.g. personas[2].weight; "" for the file itself
    message: str  # what is wrong and what was expected
    column: int | None = None

    def __str__(self) -> str:
        location = self.source
        if self.line is not None:
            location += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{location}: {self.field}: {self.message}" if self.field else f"{location}: {self.message}"


class InputFileError(InputError):
    """A JSON input file (personas, alert rules, price table, deployment map) is invalid.

    The message is a header naming the file and what it is, then one line per problem, all at once,
    so one round of edits fixes them.
    """

    def __init__(self, source: str, what: str, problems: Sequence[FileProblem]) -> None:
        self.source = source
        self.what = what
        self.problems = tuple(problems)
        super().__init__(f"{source}: invalid {what}:\n" + "\n".join(map(str, self.problems)))


class KqlParameterError(InputError):
    """A query parameter cannot be rendered safely (wrong type, non-finite number, naive datetime)."""


class KqlFileError(InputError):
    """A query file's include line cannot be expanded (unknown file, no block, undeclared parameter)."""


class AzureServiceError(AppError, RuntimeError):
    """An Azure service call failed after its retries."""


class QueryError(AzureServiceError):
    """A Log Analytics query could not be answered completely."""


class UploadError(AzureServiceError):
    """Rows were not accepted by the Logs Ingestion API."""


class DeliveryError(AppError, RuntimeError):
    """A notification could not be handed to its transport. `maybe_delivered`: the failure came when the
    transport may already have accepted it (a connection lost during or after the message), so the caller must
    treat it as possibly delivered, as after a crash."""

    def __init__(self, message: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


def describe_azure_error(error: AzureError | OSError) -> str:
    """A one-line account of an SDK error: status, service error code and message when present.

    Also of a socket error the SDK did not wrap (OSError): its type and message.
    """
    status = getattr(error, "status_code", None)
    code = getattr(error, "error_code", None) or getattr(getattr(error, "error", None), "code", None)
    message = getattr(error, "message", None) or str(error)
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__
    parts = [f"HTTP {status}" if status else type(error).__name__]
    if code:
        parts.append(str(code))
    parts.append(first_line)
    return ": ".join(parts)


E = TypeVar("E", bound=AzureServiceError)


def azure_service_error(kind: type[E], what: str, error: AzureError | OSError) -> E:
    """Map an azure.core error to our tree: `kind(f"{what} failed: HTTP 503: ServiceUnavailable: ...")`."""
    mapped = kind(f"{what} failed: {describe_azure_error(error)}")
    mapped.__cause__ = error
    return mapped


P = ParamSpec("P")
R = TypeVar("R")


def maps_azure_errors(kind: type[AzureServiceError], what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a method whose SDK calls may fail: an azure.core error leaving it becomes `kind`.

    For the table stores, where each method is one short conversation with the service; errors the
    method handles itself (a lost ETag race, a missing row) never leave it.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def mapped(*args: P.args, **kwargs: P.kwargs) -> R:
            from azure.core.exceptions import AzureError

            try:
                return function(*args, **kwargs)
            except AzureError as error:
                raise azure_service_error(kind, what, error) from error

        return mapped

    return decorate
