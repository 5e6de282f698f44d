"""The traffic run's parts: prompt sizes (real tokenizers), the seeded plan, percentiles, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.azure_retry import retry_after_seconds
from shared.traffic.client import RetryPolicy, status_reason
from shared.traffic.personas import Persona, PromptSize
from shared.traffic.plan import plan_run
from shared.traffic.prompts import FRAMING_TOKENS, MIN_PROMPT_TOKENS, WORDS, build_messages
from shared.traffic.results import percentile
from standins.tokenizer import count_chat_prompt_tokens, count_text_tokens

ENCODINGS = ("o200k_base", "cl100k_base")


def _persona(name: str = "p", **overrides: Any) -> Persona:
    values: dict[str, Any] = dict(
        name=name,
        subscription="sub",
        subscription_key_setting="K",
        user_id="u",
        deployment="gpt-4o-mini",
        prompt_tokens=PromptSize(100, 3000, "log_uniform"),
        max_tokens=50,
        stream_share=0.5,
        include_usage_share=0.5,
        prefix_share=0.5,
        weight=1.0,
        subscription_key="key",
    )
    values.update(overrides)
    return Persona(**values)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_word_is_one_token_with_its_leading_space(encoding: str) -> None:
    assert len(set(WORDS)) == len(WORDS) == 128
    assert all(count_text_tokens(" " + word, encoding) == 1 for word in WORDS)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("size", [MIN_PROMPT_TOKENS, 14, 100, 1037, 4000])
@pytest.mark.parametrize("prefix_share", [0.0, 0.5, 1.0])
def test_prompt_is_exactly_the_requested_size(encoding: str, size: int, prefix_share: float) -> None:
    messages = build_messages(
        persona_name="p",
        prompt_tokens=size,
        prefix_share=prefix_share,
        longest_prompt_tokens=4000,
        call_seed=size,
    )
    assert count_chat_prompt_tokens(messages, encoding) == size
    assert [m["role"] for m in messages] == ["system", "user"]


def test_prompt_below_the_framing_is_refused() -> None:
    assert FRAMING_TOKENS == 11
    with pytest.raises(ValueError, match="the least is 13"):
        build_messages(
            persona_name="p", prompt_tokens=12, prefix_share=0, longest_prompt_tokens=100, call_seed=1
        )


def test_prefix_is_shared_across_calls_and_runs_the_body_is_not() -> None:
    def build(size: int, seed: int, persona: str = "p") -> list[dict[str, str]]:
        return build_messages(
            persona_name=persona,
            prompt_tokens=size,
            prefix_share=0.8,
            longest_prompt_tokens=3000,
            call_seed=seed,
        )

    short, long = build(1500, 1), build(3000, 2)
    assert long[0]["content"].startswith(short[0]["content"])
    assert count_text_tokens(short[0]["content"]) == round(0.8 * (1500 - FRAMING_TOKENS))
    assert short[1]["content"] != build(1500, 3)[1]["content"]
    assert build(1500, 1) == short  # deterministic for a call seed
    assert build(1500, 1, persona="q")[0]["content"] != short[0]["content"]


def test_plan_is_deterministic_for_a_seed_and_spread_evenly() -> None:
    personas = [
        _persona("a", weight=3.0),
        _persona("b", weight=1.0, stream_share=1.0, include_usage_share=0.0),
    ]
    first = plan_run(personas, requests=400, seed=7, send_window_seconds=100.0)
    assert first == plan_run(personas, requests=400, seed=7, send_window_seconds=100.0)
    assert first != plan_run(personas, requests=400, seed=8, send_window_seconds=100.0)
    offsets = [call.send_offset_seconds for call in first]
    assert offsets == pytest.approx([i * 0.25 for i in range(400)])
    share_a = sum(call.persona.name == "a" for call in first) / len(first)
    assert 0.68 < share_a < 0.82  # weights 3:1
    b_calls = [call for call in first if call.persona.name == "b"]
    assert all(call.stream and not call.include_usage for call in b_calls)
    assert not any(call.include_usage and not call.stream for call in first)
    assert all(100 <= call.prompt_tokens <= 3000 for call in first)
    # log-uniform: the median prompt sits near the geometric mean, far below the arithmetic one.
    median = sorted(call.prompt_tokens for call in first)[200]
    assert 350 < median < 1000


def test_zero_weight_persona_never_calls_and_empty_run_plans_nothing() -> None:
    personas = [_persona("a"), _persona("never", weight=0.0)]
    assert {
        call.persona.name for call in plan_run(personas, requests=200, seed=1, send_window_seconds=1)
    } == {"a"}
    assert plan_run(personas, requests=0, seed=1, send_window_seconds=10) == ()


def test_uniform_prompt_sizes_cover_the_range() -> None:
    persona = _persona(prompt_tokens=PromptSize(20, 25))
    sizes = {call.prompt_tokens for call in plan_run([persona], requests=300, seed=3, send_window_seconds=0)}
    assert sizes == set(range(20, 26))


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    values = [float(v) for v in range(1, 101)]
    random.Random(1).shuffle(values)
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (50.0, 95.0, 100.0)


def test_retry_after_forms() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "7"}) == 0.25
    assert retry_after_seconds({"Retry-After": "Thu, 01 Jan 2026 12:00:05 GMT"}, now=now) == 5.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_without_retry_after_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=10, request_timeout_seconds=5)
    rng = random.Random(0)
    waits = [policy.backoff_seconds(attempt, rng) for attempt in range(1, 9)]
    assert 0.25 <= waits[0] <= 0.5 and 4.0 <= waits[-1] <= 8.0
    assert all(wait <= 8.0 for wait in waits)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (429, "throttled"),
        (500, "server_error"),
        (503, "server_error"),
        (400, "bad_request"),
        (408, "timeout"),
    ],
)
def test_status_reasons(status: int, reason: str) -> None:
    assert status_reason(status) == reason
