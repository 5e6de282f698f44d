"""Per-deployment minute windows behind Azure's x-ratelimit-remaining-* headers (not enforced)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

_WINDOW_SECONDS = 60.0


@dataclass
class _Window:
    started_at: float
    requests: int = 0
    tokens: int = 0


class MinuteQuota:
    def __init__(
        self,
        *,
        tokens_per_minute: int,
        requests_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tokens_per_minute = tokens_per_minute
        self._requests_per_minute = requests_per_minute
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def consume(self, deployment: str, tokens: int) -> dict[str, str]:
        """Record one request and return the remaining-quota headers Azure would send."""
        now = self._clock()
        window = self._windows.get(deployment)
        if window is None or now - window.started_at >= _WINDOW_SECONDS:
            window = self._windows[deployment] = _Window(started_at=now)
        window.requests += 1
        window.tokens += tokens
        return {
            "x-ratelimit-remaining-requests": str(max(0, self._requests_per_minute - window.requests)),
            "x-ratelimit-remaining-tokens": str(max(0, self._tokens_per_minute - window.tokens)),
        }
