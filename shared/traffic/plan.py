"""What one traffic run will send: which persona calls when, streamed or not, how big a prompt.

The plan is a pure function of the personas, the request count, the seed and the send window,
so a seed reproduces a run exactly. Prompt text is not stored here: each call keeps a seed and
its prompt is built when it is sent, so a large run does not hold every prompt in memory.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from shared.traffic.personas import Persona, PromptSize


@dataclass(frozen=True)
class PlannedCall:
    index: int
    persona: Persona
    send_offset_seconds: float  # from the run's start
    stream: bool
    include_usage: bool  # only ever True for streamed calls
    prompt_tokens: int
    call_seed: int


def _prompt_tokens(rng: random.Random, size: PromptSize) -> int:
    if size.distribution == "log_uniform":
        # Many short prompts and a long tail, like real chat traffic.
        drawn = math.exp(rng.uniform(math.log(size.min_tokens), math.log(size.max_tokens)))
        return min(size.max_tokens, max(size.min_tokens, round(drawn)))
    return rng.randint(size.min_tokens, size.max_tokens)


def plan_run(
    personas: Sequence[Persona], *, requests: int, seed: int, send_window_seconds: float
) -> tuple[PlannedCall, ...]:
    """`requests` calls spaced evenly over the send window, the first at offset 0."""
    if requests < 0 or send_window_seconds < 0:
        raise ValueError("requests and send_window_seconds must be >= 0")
    rng = random.Random(seed)
    weights = [persona.weight for persona in personas]
    interval_seconds = send_window_seconds / requests if requests else 0.0
    calls: list[PlannedCall] = []
    for index in range(requests):
        persona = rng.choices(personas, weights=weights)[0]
        stream = rng.random() < persona.stream_share
        # Drawn for every call, streamed or not, so the draws for later calls do not depend on
        # this one's outcome: changing one share leaves the rest of the plan as it was.
        include_usage = rng.random() < persona.include_usage_share
        calls.append(
            PlannedCall(
                index=index,
                persona=persona,
                send_offset_seconds=index * interval_seconds,
                stream=stream,
                include_usage=stream and include_usage,
                prompt_tokens=_prompt_tokens(rng, persona.prompt_tokens),
                call_seed=rng.getrandbits(63),
            )
        )
    return tuple(calls)
