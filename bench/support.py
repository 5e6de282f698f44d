"""What the benchmarks share: each measured phase in its own process, and the stand-ins they measure against.

A phase runs as `python -m bench.<module> phase <name> ...`, prints one JSON line last (its figures, with
its own peak RSS), and run_phase reads it back; so each figure is one process's wall time and memory,
untouched by what ran before it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m <module> phase <args>` and return the JSON its last line prints."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, "phase", *args], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"phase {args[0]} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def with_monitor(work: Path, db: Path, measure: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """The identity and monitor stand-ins as the local stack starts them, serving `db` (work/monitor.duckdb);
    `measure` gets a JSON file with the endpoints, ids, CA and identity environment a phase needs."""
    from standins.processes import Child, stop_all
    from standins.stack import Launch, standins_named, start_services

    launch = Launch.create(work)
    assert launch.monitor_db == db, f"the monitor stand-in serves {launch.monitor_db}, not {db}"
    children: list[Child] = []
    try:
        started = start_services(standins_named("identity", "monitor"), launch, children, echo=False)
        stack_file = work / "bench-stack.json"
        stack_file.write_text(json.dumps({
            "url": started["monitor"].url, "workspace_id": launch.workspace_id, "rule_id": launch.rule_id,
            "ca": str(launch.ca_cert),
            "identity_env": {"IDENTITY_ENDPOINT": f"{started['identity'].url}/msi/token",
                             "IDENTITY_HEADER": launch.identity_header},
        }))  # fmt: skip
        return measure(stack_file)
    finally:
        stop_all(children)
