"""Static security scan of infra/ with checkov's Bicep support: no failed check, and every
suppression sits next to its resource with a reason and still suppresses something.

checkov runs from its own venv (.local/checkov-venv, from tools/checkov/requirements.txt) because
its pins conflict with requirements-dev.txt; `make setup` installs it. --skip-download keeps it offline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from tests import ROOT
from tests.support.bicep import INFRA, bicep_files

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".local" / "checkov-venv" / "bin" / "checkov"))
SKIP_COMMENT = re.compile(r"//\s*checkov:skip=(?P<id>CKV2?_[A-Z]+_\d+)(?::(?P<reason>.*))?")


@cache
def scan() -> dict[str, Any]:
    assert CHECKOV.is_file(), (
        f"{CHECKOV} is missing: run `make setup` (it installs tools/checkov/requirements.txt into .local/checkov-venv)"
    )
    proc = subprocess.run(
        [str(CHECKOV), "--directory", str(INFRA), "--framework", "bicep", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.returncode in (0, 1), f"checkov failed to run ({proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    result: dict[str, Any] = report[0] if isinstance(report, list) else report
    return result


def suppressions() -> list[tuple[Path, int, str, str]]:
    found = []
    for path in bicep_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path, number, match.group("id"), (match.group("reason") or "").strip()))
    return found


def test_checkov_parses_every_bicep_file() -> None:
    summary = scan()["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0


def test_no_failed_check() -> None:
    failed = scan()["results"].get("failed_checks", [])
    assert not failed, "\n".join(
        f"{c['check_id']} {c['resource']} ({Path(c['file_abs_path']).relative_to(ROOT)}): {c['check_name']}"
        for c in failed
    )


def test_every_suppression_has_a_reason_inside_its_resource() -> None:
    for path, number, check_id, reason in suppressions():
        assert len(reason) >= 20, f"{path.name}:{number}: {check_id} needs a reason"
        lines = path.read_text(encoding="utf-8").splitlines()
        above = next(line for line in reversed(lines[: number - 1]) if not line.strip().startswith("//"))
        assert above.startswith("resource "), f"{path.name}:{number}: put the suppression first inside its resource"


def test_every_suppression_still_suppresses_a_check() -> None:
    skipped = {(Path(c["file_abs_path"]).name, c["check_id"]) for c in scan()["results"].get("skipped_checks", [])}
    stale = [f"{p.name}:{n} {cid}" for p, n, cid, _ in suppressions() if (p.name, cid) not in skipped]
    assert not stale, "suppressions that no longer suppress anything: " + ", ".join(stale)
