"""Microsoft's KQL parser asked, one query at a time, what each `let` statement of a query holds
(tests/support/kql_literals.js): the binder's fuzz tests check that a bound value is one literal and that
the parser reads back exactly the value bound. One node process serves a whole test module."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from tests import ROOT

SCRIPT = ROOT / "tests" / "support" / "kql_literals.js"
PARSER_DIR = ROOT / "node_modules" / "@kusto" / "language-service-next"


@dataclass(frozen=True)
class LetValue:
    name: str
    syntax: str  # LiteralExpression, DynamicExpression, -LiteralExpression (a minus sign before one), ...
    type: str | None  # string, long, real, datetime, timespan, dynamic, bool
    value: str | None  # as the parser read it (ticks for datetime and timespan); None: not a literal


@dataclass(frozen=True)
class Parsed:
    diagnostics: tuple[str, ...]
    statements: tuple[str, ...]
    lets: tuple[LetValue, ...]


class KqlLiteralReader:
    """A long-lived `node kql_literals.js`; `read(text)` is what the parser makes of one query."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None or not PARSER_DIR.is_dir():
            raise RuntimeError("node and node_modules/@kusto/language-service-next are needed (make setup)")
        self._process = subprocess.Popen(
            [node, str(SCRIPT)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8", cwd=ROOT
        )

    def read(self, text: str) -> Parsed:
        assert self._process.stdin is not None and self._process.stdout is not None
        # ensure_ascii: the request line stays ASCII whatever the text holds (lone surrogates included).
        self._process.stdin.write(json.dumps({"text": text}) + "\n")
        self._process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"kql_literals.js failed: {answer['error']}")
        return Parsed(
            tuple(answer["diagnostics"]),
            tuple(answer["statements"]),
            tuple(LetValue(**let) for let in answer["lets"]),
        )

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)
