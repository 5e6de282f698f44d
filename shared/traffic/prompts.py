"""Chat prompts of an exact token size, without a tokenizer at run time.

Every word below is a single token, with its leading space, in both o200k_base (gpt-4o family)
and cl100k_base (gpt-35-turbo / gpt-4), and the BPE pre-tokenizer never merges across a space,
so `n` words joined with leading spaces are exactly `n` tokens (tests/test_prompts_tokens checks
this with the real encodings). That keeps tiktoken and its BPE files out of the function app.

A prompt is two messages: a system message cut from the persona's fixed text (identical across
calls and runs, so the model's prompt cache sees a repeated prefix and reports cached tokens),
and a user message drawn from the call's own seed.
"""

from __future__ import annotations

import random
from functools import lru_cache

WORDS: tuple[str, ...] = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "with",
    "was",
    "on",
    "be",
    "by",
    "at",
    "this",
    "are",
    "from",
    "or",
    "have",
    "an",
    "they",
    "which",
    "one",
    "you",
    "were",
    "her",
    "all",
    "she",
    "there",
    "would",
    "their",
    "we",
    "him",
    "been",
    "has",
    "when",
    "who",
    "will",
    "more",
    "no",
    "if",
    "out",
    "so",
    "said",
    "what",
    "up",
    "its",
    "about",
    "into",
    "than",
    "them",
    "can",
    "only",
    "other",
    "new",
    "some",
    "could",
    "time",
    "these",
    "two",
    "may",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
)
_SPACED = tuple(" " + word for word in WORDS)

# OpenAI's documented chat framing, which Azure OpenAI reports in usage.prompt_tokens: 3 markup
# tokens per message plus its role (one token for "system" and "user"), and 3 priming the reply.
TOKENS_PER_MESSAGE = 3 + 1
REPLY_PRIMING_TOKENS = 3
MESSAGES_PER_PROMPT = 2
FRAMING_TOKENS = MESSAGES_PER_PROMPT * TOKENS_PER_MESSAGE + REPLY_PRIMING_TOKENS
# Each message carries at least one word.
MIN_PROMPT_TOKENS = FRAMING_TOKENS + MESSAGES_PER_PROMPT


def _words(rng: random.Random, count: int) -> str:
    return "".join(rng.choices(_SPACED, k=count))


@lru_cache(maxsize=64)
def _prefix_text(persona_name: str, words: int) -> tuple[str, tuple[int, ...]]:
    """The persona's fixed text and, for each word count, where that many words end."""
    # Seeded by the persona's name only: the same system text in every run, as a real app has.
    rng = random.Random(f"prefix:{persona_name}")
    chosen = rng.choices(_SPACED, k=words)
    ends = [0]
    for word in chosen:
        ends.append(ends[-1] + len(word))
    return "".join(chosen), tuple(ends)


def shared_prefix(persona_name: str, tokens: int, longest_tokens: int) -> str:
    """The first `tokens` words of the persona's fixed text (`longest_tokens` sizes the cache)."""
    if not 0 <= tokens <= longest_tokens:
        raise ValueError(f"prefix of {tokens} tokens asked for; expected 0..{longest_tokens}")
    text, ends = _prefix_text(persona_name, longest_tokens)
    return text[: ends[tokens]]


def build_messages(
    *, persona_name: str, prompt_tokens: int, prefix_share: float, longest_prompt_tokens: int, call_seed: int
) -> list[dict[str, str]]:
    """Two messages whose prompt, as the service counts it, is exactly `prompt_tokens` tokens."""
    if prompt_tokens < MIN_PROMPT_TOKENS:
        raise ValueError(f"prompt of {prompt_tokens} tokens asked for; the least is {MIN_PROMPT_TOKENS}")
    content_tokens = prompt_tokens - FRAMING_TOKENS
    prefix_tokens = min(content_tokens - 1, max(1, round(prefix_share * content_tokens)))
    longest_prefix = max(1, longest_prompt_tokens - FRAMING_TOKENS - 1)
    return [
        {"role": "system", "content": shared_prefix(persona_name, prefix_tokens, longest_prefix)},
        {"role": "user", "content": _words(random.Random(call_seed), content_tokens - prefix_tokens)},
    ]
