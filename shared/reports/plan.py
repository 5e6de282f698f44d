"""Which chargeback reports go to whom, and the periods they cover.

The rules file (ALERT_RULES_FILE) names them in a section of its own, beside its recipient groups:

    "reports": [
      {"period": "monthly", "recipients": "finops"},
      {"period": "weekly", "recipients": "platform", "top_movers": 5}
    ]

period: weekly (ISO weeks: Monday 00:00 UTC to the next Monday) or monthly (calendar months, UTC); recipients: one of
the file's recipient_groups; top_movers: how many callers (subscription x user x model) whose cost changed most the
report lists (1-50, default 5). A period x group is listed once. REPORT_PERIODS (shared/config.py) says which periods
the app sends at all. Every mistake is reported with file, line and field (shared/json_input.py), all at once, as the
alert rules are. No section: no reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shared.alerts.rules import load_rules
from shared.config import REPORT_PERIODS
from shared.json_input import Problems, choice, read_json_file, show, whole
from shared.windows import as_utc, start_of_day, start_of_month

DEFAULT_TOP_MOVERS = 5
_FIELDS = {"period", "recipients", "top_movers", "_comment"}


@dataclass(frozen=True)
class ReportTarget:
    period: str  # "weekly" or "monthly"
    group: str  # a recipient group of the rules file
    recipients: tuple[str, ...]
    top_movers: int = DEFAULT_TOP_MOVERS


@dataclass(frozen=True)
class Period:
    kind: str  # "weekly" or "monthly"
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive

    @property
    def key(self) -> str:
        """The period's name in state, subjects and file names: 2026-W48, 2026-11."""
        if self.kind == "weekly":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start:%Y-%m}"

    @property
    def label(self) -> str:
        if self.kind == "weekly":
            last = self.end - timedelta(days=1)
            return f"week {self.key} ({self.start:%d %b} - {last:%d %b %Y})"
        return f"{self.start:%B %Y}"

    def previous(self) -> Period:
        return period_containing(self.kind, self.start - timedelta(microseconds=1))


def period_containing(kind: str, at: datetime) -> Period:
    day = start_of_day(as_utc(at))
    if kind == "weekly":
        start = day - timedelta(days=day.weekday())
        return Period(kind, start, start + timedelta(days=7))
    start = start_of_month(day)
    return Period(kind, start, start_of_month(start + timedelta(days=32)))


def last_ended(kind: str, now: datetime) -> Period:
    """The latest period of `kind` that ended at or before `now`."""
    return period_containing(kind, period_containing(kind, now).start - timedelta(microseconds=1))


def load_report_plan(rules_file: Path) -> list[ReportTarget]:
    """The reports the rules file names (module docstring); raises InputFileError naming file, line and field."""
    groups = load_rules(rules_file).recipient_groups  # the file's own checks first: its groups are known good
    document = read_json_file(rules_file, "alert rules")
    return parse_reports(document.root, groups, document.source)


def parse_reports(document: Any, groups: Mapping[str, tuple[str, ...]], source: str) -> list[ReportTarget]:
    problems = Problems(source, "alert rules")
    top = problems.fields(document, "")
    if "reports" not in top:
        return []
    targets: list[ReportTarget] = []
    seen: set[tuple[str, str]] = set()
    group_names = ", ".join(sorted(groups)) or "(the file has none)"
    for path, line, raw in top.items("reports", expected='a non-empty list of {"period", "recipients"} objects'):
        if not isinstance(raw, Mapping):
            problems.add(line, path, f'expected a JSON object {{"period", "recipients"}}, got {show(raw)}')
            continue
        fields = problems.fields(raw, path, line)
        fields.unknown(_FIELDS, "a report")
        period = fields.get("period", choice(REPORT_PERIODS))
        group = fields.get("recipients", choice(tuple(groups)), expected=f"one of the recipient_groups: {group_names}")
        movers = fields.get("top_movers", whole(minimum=1, maximum=50), DEFAULT_TOP_MOVERS)
        if period is None or group is None or movers is None:
            continue
        if (period, group) in seen:
            fields.problem("recipients", f"the {period} report to {group} is listed twice")
            continue
        seen.add((period, group))
        targets.append(ReportTarget(period, group, tuple(groups[group]), movers))
    problems.raise_if_any()
    return targets
