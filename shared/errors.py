"""One root error for the app, a few named branches, and the one place Azure SDK errors are mapped.

    AppError                      anything the app raises on purpose; the message says what to fix
    ├── InputError (ValueError)   bad input: the message names the setting, or the file, line and field
    │   ├── ConfigError           an app setting (shared/config.py)
    │   ├── InputFileError        a JSON input file: personas, alert rules, price table, deployment map
    │   └── KqlParameterError     a value the KQL binder cannot render safely into a query
    ├── AzureServiceError         an Azure call failed after its retries (query, ingestion, table storage)
    │   ├── QueryError            a Log Analytics query gave no complete answer
    │   └── UploadError           rows the Logs Ingestion API did not accept
    └── DeliveryError             a notification (email) could not be handed over

Bad input fails at start or at the file's first read; service errors fail the run loudly after the
parts that did complete were kept; delivery errors leave the notification pending for the next run.
Code that catches an SDK error turns it into one of these with `azure_service_error`, so callers
catch our tree, never azure.core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from azure.core.exceptions import AzureError


class AppError(Exception):
    """Root of every error the app raises on purpose."""


class InputError(AppError, ValueError):
    """A setting or an input file holds something we cannot use."""


class ConfigError(InputError):
    """An app setting is missing or has a value we cannot use."""


class InputFileError(InputError):
    """A JSON input file (personas, alert rules, price table, deployment map) is invalid."""


class KqlParameterError(InputError):
    """A query parameter cannot be rendered safely (wrong type, non-finite number, naive datetime)."""


class AzureServiceError(AppError, RuntimeError):
    """An Azure service call failed after its retries."""


class QueryError(AzureServiceError):
    """A Log Analytics query could not be answered completely."""


class UploadError(AzureServiceError):
    """Rows were not accepted by the Logs Ingestion API."""


class DeliveryError(AppError, RuntimeError):
    """A notification could not be handed to its transport."""


def describe_azure_error(error: AzureError) -> str:
    """A one-line account of an SDK error: status, service error code and message when present."""
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


def azure_service_error(kind: type[E], what: str, error: AzureError) -> E:
    """Map an azure.core error to our tree: `kind(f"{what} failed: HTTP 503: ServiceUnavailable: ...")`."""
    mapped = kind(f"{what} failed: {describe_azure_error(error)}")
    mapped.__cause__ = error
    return mapped
