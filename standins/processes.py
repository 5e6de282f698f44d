"""Child processes of the local stack: spawn one, wait for its ready line, stop its whole process group.

Each stand-in prints one line when it listens (`READY <url>` for ours, Azurite its own sentence);
everything else it prints is kept as a tail for the error message and echoed when asked.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
READY_PREFIX = "READY "
OUTPUT_TAIL_LINES = 50


class StackError(RuntimeError):
    """A stand-in did not come up."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    url: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    output_tail: list[str] = field(default_factory=list)


def _pump(child: Child, stream: IO[str], echo: bool, ready_prefix: str) -> None:
    for raw in stream:
        line = raw.rstrip("\n")
        if not child.ready.is_set() and line.startswith(ready_prefix):
            child.url = line.split(maxsplit=1)[1] if " " in line else ""
            child.ready.set()
            continue
        child.output_tail.append(line)
        del child.output_tail[:-OUTPUT_TAIL_LINES]
        if echo:
            print(f"[{child.name}] {line}", flush=True)


def spawn(
    name: str,
    argv: list[str],
    *,
    cwd: Path,
    echo: bool,
    env: Mapping[str, str] | None = None,
    ready_prefix: str = READY_PREFIX,
) -> Child:
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        start_new_session=True,  # its own process group, so stopping it stops its children too
    )
    child = Child(name, process)
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(child, process.stdout, echo, ready_prefix), daemon=True).start()
    return child


def wait_ready(child: Child, timeout_seconds: float = READY_TIMEOUT_SECONDS) -> None:
    """Return once the child printed its ready line; stop it and raise StackError if it exits or times out."""
    deadline = time.monotonic() + timeout_seconds
    while not child.ready.wait(0.1):
        if child.process.poll() is not None or time.monotonic() > deadline:
            stop_child(child)
            tail = "\n".join(child.output_tail[-20:])
            raise StackError(f"{child.name} did not start (exit code {child.process.returncode}):\n{tail}")


def stop_child(child: Child) -> None:
    """SIGTERM the child's process group, SIGKILL it if it is still there after STOP_TIMEOUT_SECONDS."""
    if child.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.process.pid, signal.SIGTERM)
    try:
        child.process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_all(children: list[Child]) -> list[str]:
    """Stop every child, last started first; return the names of any whose process group outlived the stop."""
    stopped = list(reversed(children))
    for child in stopped:
        stop_child(child)
    children.clear()
    return [child.name for child in stopped if group_alive(child.process.pid)]
