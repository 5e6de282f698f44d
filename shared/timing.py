"""Per-step wall time for a run's summary line (the costs and alert runs say where their time went).

Stdlib only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(steps: dict[str, float], name: str) -> Iterator[None]:
    """Adds the seconds the block takes to steps[name] (the summary line's per-step figures)."""
    started = time.monotonic()
    try:
        yield
    finally:
        steps[name] = steps.get(name, 0.0) + time.monotonic() - started
