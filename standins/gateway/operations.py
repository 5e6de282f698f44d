"""The lab's API as APIM imports it: API ``inference-api`` at ``/inference/openai`` and its operations."""

from __future__ import annotations

import re
from dataclasses import dataclass

API_ID = "inference-api"
API_PATH = "/inference/openai"
# The backend's service URL path that the API suffix is appended to (Azure OpenAI serves /openai/...).
BACKEND_PATH = "/openai"


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str  # relative to API_PATH, with {parameter} segments
    # Which usage shape the response carries: "chat" | "completions" | "embeddings".
    kind: str

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{([^}]+)\}", self.template))

    @property
    def pattern(self) -> re.Pattern[str]:
        pieces = re.split(r"\{([^}]+)\}", self.template)
        # re.split alternates literal text and parameter names.
        regex = "".join(
            f"(?P<{_group(piece)}>[^/]+)" if index % 2 else re.escape(piece)
            for index, piece in enumerate(pieces)
        )
        return re.compile(f"^{regex}$")


def _group(parameter: str) -> str:
    return parameter.replace("-", "_")


OPERATIONS: tuple[Operation, ...] = (
    Operation("chat-completions", "POST", "/deployments/{deployment-id}/chat/completions", "chat"),
    Operation("completions", "POST", "/deployments/{deployment-id}/completions", "completions"),
    Operation("embeddings", "POST", "/deployments/{deployment-id}/embeddings", "embeddings"),
)
TEMPLATE_PARAMETERS = frozenset(parameter for op in OPERATIONS for parameter in op.parameters)
_COMPILED = tuple((op, op.pattern) for op in OPERATIONS)


@dataclass(frozen=True)
class MatchedOperation:
    operation: Operation
    parameters: dict[str, str]
    suffix: str  # the path after API_PATH, forwarded to the backend


def match_operation(method: str, path: str) -> MatchedOperation | None:
    """The operation a request path selects, or None (APIM answers 404)."""
    if not path.startswith(API_PATH + "/"):
        return None
    suffix = path[len(API_PATH) :]
    for operation, pattern in _COMPILED:
        if operation.method != method:
            continue
        found = pattern.match(suffix)
        if found:
            parameters = {name: found.group(_group(name)) for name in operation.parameters}
            return MatchedOperation(operation, parameters, suffix)
    return None


def is_api_path(path: str) -> bool:
    return path == API_PATH or path.startswith(API_PATH + "/")
