"""MeterComparison_CL: every comparison of the bypass check, compared or pending, kept as revisions.

Each costs run hands the check its final windows, and the same final windows come back in the next runs
(COST_RECOMPUTE_WINDOWS), so a comparison is written only when it says something else than the latest revision
of its key, window x deployment (meter-comparison-latest.kql, which the workbook reads too):
  - a compared (or unpublished) pair when its status, figures or allowance differ from that revision;
  - a pending pair only when its key has no row yet: a comparison already made stands while the metrics cannot
    be read (the log line still says PENDING);
  - a final window in which no pair was seen gets one row of its own, Deployment "": "compared" when nothing was
    metered on either side, "pending" when the accounts could not be read (the window cannot be shown clean);
    the KQL file shows it only while no pair of that window has a later revision.
A row carries both sides' tokens, the gap, the allowance of the strictest `bypass` rule (None without one), the
status and why (pending: the read's failure; unpublished: no account published the deployment's tokens), and
its revision. LogsComparisons reads and writes them through Log Analytics with the code the bill check's table
shares (shared/logs/revisions.py); InMemoryComparisons is its twin for tests that look at the check, not the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from shared.logs.revisions import RevisionTable, as_instant, read_latest, row_text, write_revision
from shared.meters.outputs import Allowance, BypassReport, Outcome
from shared.windows import Window

if TYPE_CHECKING:
    from azure.monitor.ingestion import LogsIngestionClient
    from azure.monitor.query import LogsQueryClient

    from shared.config import MeterSettings

LATEST_FILE = "meter-comparison-latest.kql"
LATEST_COLUMNS = (
    "WindowStart", "WindowEnd", "Deployment", "Account", "Status", "Reason", "Revision", "AccountPromptTokens",
    "AccountGeneratedTokens", "AccountTokens", "GatewayTokens", "GatewayExactTokens", "GatewayEstimatedTokens",
    "GapTokens", "AllowanceTokens",
)  # fmt: skip
NOTHING_METERED = "no tokens metered by the gateway or published by the accounts in this window"
UNPUBLISHED = (
    "the accounts were read but published no tokens of this deployment in this window (its metrics are not out "
    "yet, or the deployment is in no account of COST_MODEL_ACCOUNTS)"
)
_CENT = Decimal("0.01")
_NEVER = datetime.min.replace(tzinfo=UTC)

Key = tuple[datetime, str]  # (window start, deployment case-folded; "" for a window's own row)


@dataclass(frozen=True)
class MeterRow:
    """One row of MeterComparison_CL. The account's tokens are None while pending (nothing is known of them)."""

    window: Window
    deployment: str  # "" : the window's own row (no pair seen in it)
    account: str
    status: Outcome
    reason: str
    account_prompt_tokens: int | None
    account_generated_tokens: int | None
    gateway_tokens: int
    gateway_estimated_tokens: int
    allowance_tokens: Decimal | None
    revision: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.window.start, self.deployment.casefold())

    @property
    def account_tokens(self) -> int | None:
        if self.account_prompt_tokens is None or self.account_generated_tokens is None:
            return None
        return self.account_prompt_tokens + self.account_generated_tokens

    @property
    def gap_tokens(self) -> int | None:
        tokens = self.account_tokens
        return None if tokens is None else tokens - self.gateway_tokens

    def says_the_same_as(self, other: MeterRow) -> bool:
        """Whether the two state the same comparison (the revision and the wording of the reason aside)."""

        def figures(row: MeterRow) -> tuple[Any, ...]:
            allowance = None if row.allowance_tokens is None else row.allowance_tokens.quantize(_CENT)
            return (row.status, row.account.casefold(), row.account_prompt_tokens, row.account_generated_tokens,
                    row.gateway_tokens, row.gateway_estimated_tokens, allowance)  # fmt: skip

        return figures(self) == figures(other)

    def record(self) -> dict[str, Any]:
        revision = self.revision
        if revision is None:
            raise ValueError("a row is written with its revision")
        allowance = None if self.allowance_tokens is None else float(self.allowance_tokens.quantize(_CENT))
        return {
            "TimeGenerated": revision,
            "WindowStart": self.window.start,
            "WindowEnd": self.window.end,
            "Deployment": self.deployment,
            "Account": self.account,
            "Status": self.status,
            "Reason": self.reason,
            "Revision": revision,
            "AccountPromptTokens": self.account_prompt_tokens,
            "AccountGeneratedTokens": self.account_generated_tokens,
            "AccountTokens": self.account_tokens,
            "GatewayTokens": self.gateway_tokens,
            "GatewayExactTokens": self.gateway_tokens - self.gateway_estimated_tokens,
            "GatewayEstimatedTokens": self.gateway_estimated_tokens,
            "GapTokens": self.gap_tokens,
            "AllowanceTokens": allowance,
        }

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> MeterRow:
        def count(name: str) -> int | None:
            return None if row[name] is None else int(row[name])

        status = str(row["Status"])
        allowance = row["AllowanceTokens"]
        return cls(
            window=Window(as_instant(row["WindowStart"]), as_instant(row["WindowEnd"])),
            deployment=str(row["Deployment"] or ""), account=str(row["Account"] or ""),
            status="pending" if status == "pending" else "unpublished" if status == "unpublished" else "compared",
            reason=str(row["Reason"] or ""), account_prompt_tokens=count("AccountPromptTokens"),
            account_generated_tokens=count("AccountGeneratedTokens"), gateway_tokens=int(row["GatewayTokens"] or 0),
            gateway_estimated_tokens=int(row["GatewayEstimatedTokens"] or 0),
            allowance_tokens=None if allowance is None else Decimal(str(allowance)),
            revision=as_instant(row["Revision"]),
        )  # fmt: skip


def rows_of(report: BypassReport, allowance: Allowance | None) -> list[MeterRow]:
    """What the report says, as rows without a revision: one per pair, one per final window without a pair."""
    reason = "; ".join(report.pending_reasons) or "the accounts' metrics were not read"
    rows = []
    for item in report.comparisons:
        outcome = item.outcome
        pending = outcome == "pending"
        rows.append(
            MeterRow(
                window=item.window, deployment=item.deployment, account=item.account, status=outcome,
                reason=reason if pending else UNPUBLISHED if outcome == "unpublished" else "",
                account_prompt_tokens=None if pending else item.account_prompt_tokens,
                account_generated_tokens=None if pending else item.account_generated_tokens,
                gateway_tokens=item.gateway_tokens, gateway_estimated_tokens=item.gateway_estimated_tokens,
                allowance_tokens=None if allowance is None else allowance.tokens(item),
            )
        )  # fmt: skip
    seen = {item.window.start for item in report.comparisons}
    for window in report.windows:
        if window.start not in seen:
            rows.append(
                MeterRow(window, "", "", "pending" if report.pending else "compared",
                         reason if report.pending else NOTHING_METERED, None if report.pending else 0,
                         None if report.pending else 0, 0, 0, None if allowance is None else Decimal(0))
            )  # fmt: skip
    return rows


def to_write(rows: Sequence[MeterRow], latest: Mapping[Key, MeterRow], revision: datetime) -> list[MeterRow]:
    """The rows that say something the latest revisions do not (see the module docstring), stamped `revision`."""
    written = []
    for row in rows:
        before = latest.get(row.key)
        if row.status == "pending" and before is not None:
            continue  # a comparison made before stands; an earlier pending row says it already
        if before is not None and row.says_the_same_as(before):
            continue
        written.append(replace(row, revision=revision))
    return written


class ComparisonStore(Protocol):
    def latest(self, windows: Sequence[Window]) -> dict[Key, MeterRow]:
        """The latest revision of each key of these (consecutive) windows. Raises QueryError."""
        ...

    def write(self, rows: Sequence[MeterRow]) -> list[str]:
        """Write the rows; what did not arrive, in words (empty when all did)."""
        ...


class LogsComparisons:
    """MeterComparison_CL in the Log Analytics workspace: read through meter-comparison-latest.kql, written through
    the Logs Ingestion API (the DCR's BYPASS_DCR_STREAM)."""

    def __init__(self, settings: MeterSettings, query: LogsQueryClient, ingestion: LogsIngestionClient) -> None:
        self._settings = settings
        self._query = query
        self._ingestion = ingestion

    def latest(self, windows: Sequence[Window]) -> dict[Key, MeterRow]:
        rows = read_latest(
            self._query, self._settings.workspace_id, "bypass check: latest comparisons", LATEST_FILE,
            windows[0].start, windows[-1].end, LATEST_COLUMNS,
        )  # fmt: skip
        found = [MeterRow.from_record(row) for row in rows]
        return {row.key: row for row in found}

    def write(self, rows: Sequence[MeterRow]) -> list[str]:
        settings = self._settings
        table = RevisionTable(
            "bypass comparison", settings.ingestion_rule_id, settings.ingestion_stream, settings.upload_attempts,
            settings.retry_delay_seconds,
        )  # fmt: skip
        groups: dict[datetime, list[str]] = {}
        for row in rows:
            groups.setdefault(row.window.start, []).append(row_text(row.record()))
        return write_revision(self._ingestion, table, groups)


class InMemoryComparisons:
    """The table's twin: every row written, the latest revision per key read back."""

    def __init__(self) -> None:
        self.rows: list[MeterRow] = []

    def latest(self, windows: Sequence[Window]) -> dict[Key, MeterRow]:
        starts = {window.start for window in windows}
        found: dict[Key, MeterRow] = {}
        for row in sorted(self.rows, key=lambda item: item.revision or _NEVER):
            if row.window.start in starts:
                found[row.key] = row
        return found

    def write(self, rows: Sequence[MeterRow]) -> list[str]:
        self.rows.extend(rows)
        return []
