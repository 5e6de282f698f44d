from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from standins.stack import Stack, running_stack


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole local stack as `make run` starts it (stand-ins as processes), on free ports."""
    data_dir: Path = tmp_path_factory.mktemp("stack")
    with running_stack(data_dir, fixed_ports=False, with_host=True) as stack:
        yield stack
