"""An Adaptive Card read by Microsoft's own Adaptive Cards library (tests/support/adaptive_card.js): what it
refuses or does not know. No JSON schema of the card format is published on a registry; the library is the
renderer Teams' web client is built on, and it reports every property value and element type it cannot take."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from tests import ROOT

SCRIPT = ROOT / "tests" / "support" / "adaptive_card.js"
LIBRARY = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.js"


def card_problems(card: dict[str, Any]) -> tuple[list[str], str | None]:
    """What the library could not take in the card, and the card version it read."""
    node = shutil.which("node")
    if node is None or not LIBRARY.is_file():
        raise RuntimeError("node and node_modules/adaptivecards are needed (make setup)")
    answer = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(card), capture_output=True, text=True, check=True, cwd=ROOT, timeout=60
    )
    result: dict[str, Any] = json.loads(answer.stdout)
    return list(result["problems"]), result["version"]
