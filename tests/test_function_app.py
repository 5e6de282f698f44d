"""function_app.py: the wiring is final, and importing it stays light (cold start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests import ROOT

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
HEAVY = ("pandas", "openai", "azure.monitor.query", "azure.monitor.ingestion", "azure.identity", "numpy", "matplotlib")


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_loads_no_heavy_module_and_registers_two_timers() -> None:
    code = (
        "import sys, json, function_app\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "functions = function_app.app.get_functions()\n"
        "timers = {f.get_function_name(): f.get_bindings()[0].get_dict_repr() for f in functions}\n"
        "print(json.dumps({'heavy': heavy, 'timers': {k: {'type': v['type'], 'schedule': v['schedule'],"
        " 'runOnStartup': v['runOnStartup']} for k, v in timers.items()}}))\n"
    )
    result = _run(code, SAMPLE)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["timers"] == {
        "traffic": {"type": "timerTrigger", "schedule": "%TRAFFIC_SCHEDULE%", "runOnStartup": False},
        "costs": {"type": "timerTrigger", "schedule": "%COST_SCHEDULE%", "runOnStartup": False},
    }


def test_bad_setting_fails_at_start_with_its_name() -> None:
    result = _run(
        "import function_app", {**SAMPLE, "COST_SCHEDULE": "0 * * * *"}
    )
    assert result.returncode != 0
    assert "app setting COST_SCHEDULE='0 * * * *' is invalid" in result.stderr
