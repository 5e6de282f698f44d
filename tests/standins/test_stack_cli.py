"""`make run`'s command: everything starts, timers run, RUN_FOR stops it with no process left."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ROOT

pytestmark = pytest.mark.slow


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_run_for_starts_everything_runs_timers_and_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    env = {
        **os.environ,
        # Environment wins over local.settings.json, as with Core Tools: fire both timers quickly.
        "TRAFFIC_SCHEDULE": "*/4 * * * * *",
        "COST_SCHEDULE": "2/4 * * * * *",
        "TRAFFIC_REQUESTS_PER_RUN": "4",
        "TRAFFIC_TIME_BUDGET_SECONDS": "3",
        "TRAFFIC_REQUEST_TIMEOUT_SECONDS": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "standins.stack", "--data-dir", str(data_dir), "--auto-ports", "--run-for", "12"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "stack up: gateway http://127.0.0.1:" in output
    assert f"alert emails:      {data_dir / 'outbox'}" in output
    assert "Executed 'Functions.traffic' (Succeeded" in output
    assert re.search(r"traffic run \S+ \(seed \d+\): 4 ok, 0 failed \(none\), 0 not sent of 4 planned", output)
    assert "Executed 'Functions.costs' (Succeeded" in output
    assert "costs run:" in output
    assert "stopped; no process left behind." in output
    assert (data_dir / "stack.json").exists()
    assert _processes_mentioning(str(data_dir)) == []
