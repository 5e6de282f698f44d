"""KQL test material: hostile parameter values."""

from __future__ import annotations

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

