from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.stack import Stack, running_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole local stack as `make run` starts it (stand-ins as processes), on free ports.

    The timers do not fire on their schedules here: tests fire them through the admin endpoint,
    so no background run adds tokens a test is counting.
    """
    data_dir: Path = tmp_path_factory.mktemp("stack")
    with running_stack(data_dir, fixed_ports=False, with_host=True, host_schedules=False) as stack:
        yield stack
