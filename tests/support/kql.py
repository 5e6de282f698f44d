"""KQL test material: hostile parameter values and the shared latest-revision block of the reader queries."""

from __future__ import annotations

import re
from pathlib import Path

# Values that would change a query if they were pasted into it rather than bound as literals.
HOSTILE = [
    'x" | take 0 //',
    'a\\" or 1==1 or "',
    "line1\nline2 | project-away *",
    "tab\there",
    "'single' and \"double\"",
    "back\\slash\\",
    "pipe | summarize count()",
]


def latest_revision_block(path: Path) -> str:
    """The text between a query file's `// -- latest complete revision` and `// -- end of block` markers."""
    text = path.read_text()
    return re.search(r"// -- latest complete revision.*?\n(.*?)// -- end of block", text, re.S).group(1)  # type: ignore[union-attr]
