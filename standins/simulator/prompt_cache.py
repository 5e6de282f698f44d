"""Azure-style prompt caching: a prompt reuses the longest recently seen prefix of itself.

Azure caches prompts of at least 1024 tokens; a hit covers the first 1024 tokens and then whole
128-token increments of identical prefix. We keep one digest per (scope, prefix boundary) in a
bounded LRU with a time to live, so memory stays flat under a long benchmark.
"""

from __future__ import annotations

import hashlib
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence

MIN_CACHEABLE_TOKENS = 1024
CACHE_INCREMENT_TOKENS = 128


class PromptPrefixCache:
    def __init__(
        self,
        *,
        max_entries: int,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_entries = max_entries
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._seen_at: OrderedDict[tuple[str, bytes], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen_at)

    def lookup_and_remember(self, scope: str, token_ids: Sequence[int]) -> int:
        """Tokens served from cache for this prompt; afterwards its own prefixes count as seen."""
        boundaries = _prefix_digests(token_ids)
        now = self._clock()
        cached_tokens = 0
        for boundary, digest in boundaries:
            seen_at = self._seen_at.get((scope, digest))
            if seen_at is not None and now - seen_at <= self._ttl_seconds:
                cached_tokens = boundary
        for _, digest in boundaries:
            key = (scope, digest)
            self._seen_at[key] = now
            self._seen_at.move_to_end(key)
        while len(self._seen_at) > self._max_entries:
            self._seen_at.popitem(last=False)
        return cached_tokens


def _prefix_digests(token_ids: Sequence[int]) -> list[tuple[int, bytes]]:
    """(boundary, digest of token_ids[:boundary]) at every cacheable prefix length."""
    if len(token_ids) < MIN_CACHEABLE_TOKENS:
        return []
    hasher = hashlib.blake2b(digest_size=16)
    digests: list[tuple[int, bytes]] = []
    start = 0
    for boundary in range(MIN_CACHEABLE_TOKENS, len(token_ids) + 1, CACHE_INCREMENT_TOKENS):
        hasher.update(array("q", token_ids[start:boundary]).tobytes())
        digests.append((boundary, hasher.copy().digest()))
        start = boundary
    return digests
