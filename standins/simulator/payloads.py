"""JSON bodies shaped like Azure OpenAI's chat completions, stream chunks and errors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from standins.simulator.completion import Completion

_SAFE = {"filtered": False, "severity": "safe"}
_CONTENT_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_FILTER_RESULTS = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            **_CONTENT_FILTER_RESULTS,
            "jailbreak": {"filtered": False, "detected": False},
        },
    }
]


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def system_fingerprint(response_model: str) -> str:
    return "fp_" + hashlib.sha256(response_model.encode()).hexdigest()[:10]


def usage_body(completion: Completion) -> dict[str, Any]:
    return {
        "completion_tokens": completion.completion_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": completion.reasoning_tokens,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": completion.prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": completion.cached_tokens},
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def _envelope(completion: Completion, obj: str) -> dict[str, Any]:
    model = completion.deployment.response_model
    return {
        "created": completion.created,
        "id": completion.completion_id,
        "model": model,
        "object": obj,
        "system_fingerprint": system_fingerprint(model),
    }


def completion_json(completion: Completion) -> str:
    choice = {
        "content_filter_results": _CONTENT_FILTER_RESULTS,
        "finish_reason": completion.finish_reason,
        "index": 0,
        "logprobs": None,
        "message": {"annotations": [], "content": completion.text, "refusal": None, "role": "assistant"},
    }
    body = {
        **_envelope(completion, "chat.completion"),
        "choices": [choice],
        "prompt_filter_results": _PROMPT_FILTER_RESULTS,
        "usage": usage_body(completion),
    }
    return _dumps(body)


class ChunkWriter:
    """Serializes one stream's ``data:`` events; every chunk shares id, created and model."""

    def __init__(self, completion: Completion) -> None:
        self._completion = completion
        self._envelope = _envelope(completion, "chat.completion.chunk")
        # With include_usage every chunk carries "usage": null except the last; without, none do.
        if completion.include_usage:
            self._envelope["usage"] = None

    def _event(self, body: dict[str, Any]) -> bytes:
        return f"data: {_dumps(body)}\n\n".encode()

    def _choice_chunk(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {
            "content_filter_results": {},
            "delta": delta,
            "finish_reason": finish_reason,
            "index": 0,
            "logprobs": None,
        }
        return self._event({**self._envelope, "choices": [choice]})

    def role(self) -> bytes:
        return self._choice_chunk({"content": "", "refusal": None, "role": "assistant"}, None)

    def content(self, text: str) -> bytes:
        return self._choice_chunk({"content": text}, None)

    def finish(self) -> bytes:
        return self._choice_chunk({}, self._completion.finish_reason)

    def usage(self) -> bytes:
        return self._event({**self._envelope, "choices": [], "usage": usage_body(self._completion)})

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


def error_response(
    status: int, code: str | None, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    """Azure's error envelope ``{"error": {"code", "message", ...}}``."""
    body = {"error": {"code": code, "message": message, **extra}}
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def unauthorized() -> web.Response:
    return error_response(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
        "key for an active subscription and use a correct regional API endpoint for your resource.",
    )


def key_auth_disabled() -> web.Response:
    # An account with disableLocalAuth refuses key authentication ("AuthenticationTypeDisabled");
    # https://learn.microsoft.com/azure/ai-services/disable-local-auth. The exact status and wording
    # are what the service answers in practice; not verifiable from here.
    return error_response(403, "AuthenticationTypeDisabled", "Key based authentication is disabled for this resource.")


def resource_not_found() -> web.Response:
    # What Azure answers for a path it does not serve, including a missing api-version.
    return error_response(404, "404", "Resource not found")


def deployment_not_found() -> web.Response:
    return error_response(
        404,
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment within the "
        "last 5 minutes, please wait a moment and try again.",
    )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> web.Response:
    return error_response(400, code, message, type="invalid_request_error", param=param)


def too_many_requests(api_version: str, retry_after_seconds: int, headers: dict[str, str]) -> web.Response:
    retry = {"retry-after": str(retry_after_seconds), "retry-after-ms": str(retry_after_seconds * 1000)}
    return error_response(
        429,
        "429",
        f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version {api_version} have "
        f"exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after "
        f"{retry_after_seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like "
        f"to further increase the default rate limit.",
        headers={**headers, **retry},
    )


def server_error(headers: dict[str, str]) -> web.Response:
    return error_response(
        500,
        None,
        "The server had an error while processing your request. Sorry about that!",
        headers=headers,
        type="server_error",
        param=None,
    )
