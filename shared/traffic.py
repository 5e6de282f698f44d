"""Synthetic chat traffic through the gateway, with the usage each response reported.

This is the foundation's minimal run: a few calls, alternating plain and streamed (with the usage
chunk requested), all with one subscription key and user. Personas, pacing and the ground-truth
upload build on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai import AzureOpenAI
    from openai.types.chat import ChatCompletionMessageParam

    from shared.config import Settings

log = logging.getLogger(__name__)

_PROMPT = "Summarise in two sentences why per-team token budgets matter for an AI gateway."


@dataclass
class TrafficRunSummary:
    calls_ok: int = 0
    calls_failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    def line(self) -> str:
        failed = ", ".join(f"{reason}={count}" for reason, count in sorted(self.failures.items())) or "none"
        return (
            f"traffic run: {self.calls_ok} ok, {self.calls_failed} failed ({failed}); tokens "
            f"prompt={self.prompt_tokens} completion={self.completion_tokens} total={self.total_tokens}; "
            f"{self.duration_seconds:.1f}s"
        )


def _client(settings: Settings) -> AzureOpenAI:
    from openai import AzureOpenAI

    return AzureOpenAI(
        azure_endpoint=f"{settings.gateway_url}/inference",
        api_key=settings.traffic_subscription_key,
        api_version=settings.openai_api_version,
        max_retries=2,
        timeout=60.0,
    )


def _one_call(client: AzureOpenAI, settings: Settings, *, stream: bool) -> tuple[int, int, int]:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": _PROMPT}]
    headers = {"x-user-id": settings.traffic_user_id}
    if not stream:
        response = client.chat.completions.create(
            model=settings.traffic_deployment, messages=messages, max_tokens=120, extra_headers=headers
        )
        usage = response.usage
    else:
        usage = None
        chunks = client.chat.completions.create(
            model=settings.traffic_deployment,
            messages=messages,
            max_tokens=120,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=headers,
        )
        for chunk in chunks:
            if chunk.usage is not None:
                usage = chunk.usage
    if usage is None:
        return 0, 0, 0
    return usage.prompt_tokens, usage.completion_tokens, usage.total_tokens


def run_traffic(settings: Settings) -> TrafficRunSummary:
    import openai

    summary = TrafficRunSummary()
    started = time.monotonic()
    client = _client(settings)
    for index in range(settings.traffic_requests_per_run):
        try:
            prompt, completion, total = _one_call(client, settings, stream=index % 2 == 1)
        except openai.APIStatusError as error:
            reason = f"http_{error.status_code}"
        except openai.APITimeoutError:
            reason = "timeout"
        except openai.APIConnectionError:
            reason = "connection"
        else:
            summary.calls_ok += 1
            summary.prompt_tokens += prompt
            summary.completion_tokens += completion
            summary.total_tokens += total
            continue
        summary.calls_failed += 1
        summary.failures[reason] = summary.failures.get(reason, 0) + 1
    summary.duration_seconds = time.monotonic() - started
    log.info(summary.line())
    return summary
