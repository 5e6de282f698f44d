"""Azure SDK errors as the SDK raises them after its retries, built from a canned HTTP response."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from azure.core.exceptions import HttpResponseError


@dataclass
class _Response:
    """Just enough of an HTTP response for HttpResponseError to read status, reason and body."""

    status_code: int
    reason: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    request: None = None

    def text(self, encoding: str | None = None) -> str:
        return self.body


def http_error(status: int, reason: str, code: str, message: str) -> HttpResponseError:
    """The error the SDK raises for an HTTP status whose body is the service's {"error": {code, message}}."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return HttpResponseError(response=_Response(status, reason, body))  # type: ignore[arg-type]


def http_503() -> HttpResponseError:
    return http_error(503, "Service Unavailable", "ServiceUnavailable", "The service is busy; try later")
