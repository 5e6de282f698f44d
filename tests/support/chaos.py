"""Writing a chaos control file (standins/chaos.py) as the soak driver does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_plan(path: Path, plan: dict[str, Any] | str) -> Path:
    """Replace the control file as the soak driver does: a temp file renamed over it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(plan if isinstance(plan, str) else json.dumps(plan), encoding="utf-8")
    os.replace(tmp, path)
    return path
