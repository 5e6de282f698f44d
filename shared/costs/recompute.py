"""Recomputing a list of cost windows: the steps the costs run (run.py) and the explicit reprice
(reprice.py) share, so both read, price, decide and upload the same way.

For the planned windows given (oldest first, each with the final flag to upload it with):
  1. read their token usage, summarized by Log Analytics (query.py);
  2. price it with the run's price table and deployment map (frame.py) and fingerprint every window
     twice: its whole content, and its usage alone (keys and tokens, not what they cost);
  3. decide per window, against what progress recorded of its last upload (`decide`);
  4. upload the windows to upload as new revisions (shared/logs/upload.py; readers take the latest
     complete revision per window), unless told not to (a dry run);
  5. say what progress to record; the caller saves it (the run with its watermark, the reprice without).

Deciding, per window:
  * no usage: "empty", nothing to upload;
  * the same content and final flag as its last upload: "unchanged";
  * in a closed month (before `closed_before`: the run's current month) with the same usage as its last
    upload but other prices (another price version, or other costs: a deployment priced now): "held".
    A closed month's figures may already be in an invoice or a chargeback, so a run never reprices them
    behind anyone's back; `python -m tools.reprice` does, on purpose and with a reason. Late usage in a
    closed month is still uploaded (with the current prices: nothing is lost) and said so;
  * otherwise: "upload".
An uploaded window whose last upload had another price version, or left a model unpriced that is priced
now, is restated (Restatement): the run counts it and says so in one log line (restatement_line).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.config import CostSettings
from shared.costs.clients import CostClients, build_clients, upload_policy
from shared.costs.deployments import deployment_map_for_run
from shared.costs.outputs import WindowOutcome
from shared.costs.pricing import DeploymentMap, PriceTable, load_deployment_map, load_price_table
from shared.costs.progress import WindowProgress
from shared.logs.upload import UploadReport
from shared.timing import timed
from shared.windows import PlannedWindow, Window

if TYPE_CHECKING:
    from shared.costs.frame import PricedUsage
    from shared.logs.parts import PartedResult

EMPTY_FINGERPRINT = "0:0000000000000000"
_LISTED_WINDOWS = 6  # a log line names this many windows; more are given as a span

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInputs:
    """What a run prices with, read once before anything is priced."""

    clients: CostClients
    prices: PriceTable
    deployments: DeploymentMap


def load_inputs(settings: CostSettings, clients: CostClients | None = None) -> RunInputs:
    prices = load_price_table(settings.price_table_path)
    # Usage of these keys is flagged unpriced (and alerted by the unpriced rule); say why once per run, at
    # info: the shipped catalog always has some (README, Prices), so a warning every run would be noise.
    if prices.left_out:
        log.info(
            "price table %s: %d prices not usable (first: %s)", prices.version, len(prices.left_out), prices.left_out[0]
        )
    file_deployments = load_deployment_map(settings.deployment_map_path)
    clients = clients or build_clients(settings)
    # Listed once per run, before anything is priced: a refused read fails the run, never prices blind.
    deployments = deployment_map_for_run(file_deployments, clients.discovery)
    return RunInputs(clients, prices, deployments)


@dataclass(frozen=True)
class WindowContent:
    """What the recomputation found in one window."""

    fingerprint: str  # of the whole content (frame.window_fingerprints)
    usage_fingerprint: str  # of the keys and tokens alone
    rows: int
    unpriced_models: tuple[str, ...]  # price keys left unpriced (no price), as PricedUsage names them


EMPTY_CONTENT = WindowContent(EMPTY_FINGERPRINT, EMPTY_FINGERPRINT, 0, ())


@dataclass(frozen=True)
class Restatement:
    """An uploaded window whose prices differ from its last upload's."""

    window: Window
    previous_price_version: str | None  # None: its last upload predates price versions in progress
    newly_priced: tuple[str, ...]  # models its last upload left unpriced that are priced now
    closed_month: bool  # in a month before the run's: only its late usage uploaded it


@dataclass(frozen=True)
class Held:
    """A closed-month window not uploaded again: only its prices changed."""

    window: Window
    price_version: str | None  # the prices its stored rows keep


@dataclass
class Recomputed:
    """What recompute did; `progress` is for the caller to save."""

    revision: datetime
    priced: PricedUsage
    usage: PartedResult
    upload: UploadReport
    contents: dict[datetime, WindowContent]  # the non-empty windows
    outcomes: list[WindowOutcome] = field(default_factory=list)
    progress: list[WindowProgress] = field(default_factory=list)
    restated: list[Restatement] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


def decide(
    item: PlannedWindow,
    previous: WindowProgress | None,
    content: WindowContent,
    price_version: str,
    closed_before: datetime | None,
    *,
    hold_fewer_rows: bool = False,
) -> str:
    """"empty", "unchanged", "held" or "upload" (see the module docstring). `hold_fewer_rows` (the explicit
    reprice, which reaches back towards the workspace's retention): a window that now has fewer rows than it
    uploaded is held, since metrics past retention would otherwise replace its costs with part of them."""
    if content.fingerprint == EMPTY_FINGERPRINT:
        return "empty"
    if previous is None:
        return "upload"
    if (previous.fingerprint, previous.final) == (content.fingerprint, item.final):
        return "unchanged"
    if hold_fewer_rows and content.rows < previous.rows:
        return "held"
    if previous.fingerprint == content.fingerprint:
        return "upload"  # the same content, now final: nothing is repriced, its rows only say IsFinal
    closed = closed_before is not None and item.window.start < closed_before
    # An unknown usage fingerprint (recorded before it was kept) cannot show the usage is the same: uploaded.
    same_usage = previous.usage_fingerprint == content.usage_fingerprint
    other_prices = previous.price_version != price_version or previous.fingerprint != content.fingerprint
    return "held" if closed and same_usage and other_prices else "upload"


def restatement(
    item: PlannedWindow,
    previous: WindowProgress | None,
    content: WindowContent,
    price_version: str,
    closed_before: datetime | None,
) -> Restatement | None:
    """The restatement an upload of this window is, if its prices differ from its last upload's."""
    if previous is None or previous.fingerprint == EMPTY_FINGERPRINT:
        return None
    newly_priced = tuple(sorted(set(previous.unpriced_models or ()) - set(content.unpriced_models)))
    other_version = previous.price_version is not None and previous.price_version != price_version
    # Costs that moved while the usage did not: a price, deployment type or capacity changed, whatever the label.
    repriced = previous.usage_fingerprint == content.usage_fingerprint and previous.fingerprint != content.fingerprint
    if not (other_version or newly_priced or repriced):
        return None
    closed = closed_before is not None and item.window.start < closed_before
    return Restatement(item.window, previous.price_version, newly_priced, closed)


def recompute(
    settings: CostSettings,
    inputs: RunInputs,
    planned: Sequence[PlannedWindow],
    recorded: Mapping[datetime, WindowProgress],
    *,
    closed_before: datetime | None,
    steps: dict[str, float],
    reprice_reason: str | None = None,
    upload: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Recomputed:
    """Steps 1-5 of the module docstring for `planned` (not empty), against `recorded` (the progress of
    those windows and any later ones). Raises QueryError when the usage could not be read completely
    (nothing uploaded). `closed_before`: the start of the run's month (None: nothing is held, the explicit
    reprice); `reprice_reason` goes into the progress of every window uploaded; `upload` False decides
    but uploads nothing (their outcome is "changed")."""
    from shared.costs.frame import price_frame, upload_records, usage_frame, window_fingerprints
    from shared.costs.ptu import UNUSED
    from shared.costs.query import KEY_COLUMNS, TOKEN_COLUMNS, unpack_windows, usage_query
    from shared.logs.parts import query_in_parts
    from shared.logs.upload import upload_windows

    first, last = planned[0].window, planned[-1].window
    # Computed-at time; strictly after every earlier revision of these windows even if clocks step back.
    revision = max([datetime.now(UTC), *(p.revision + timedelta(microseconds=1) for p in recorded.values())])
    with timed(steps, "query"):
        usage = query_in_parts(
            inputs.clients.query, settings.workspace_id, usage_query(settings), first.start, last.end, sleep=sleep
        )
        usage_columns = unpack_windows(usage.rows)
    with timed(steps, "pricing"):
        # Every planned window, not only those with usage: a provisioned deployment bills each of them.
        billed = [item.window for item in planned]
        priced = price_frame(usage_frame(usage_columns), inputs.prices, inputs.deployments, windows=billed)
        contents = _contents(
            priced,
            inputs.deployments,
            window_fingerprints(priced.frame),
            # Metered usage only: an unused-capacity row is ours, not usage (pricing it must not look like late
            # metrics, which would upload a closed month's window instead of holding it).
            window_fingerprints(priced.frame[priced.frame["CostBasis"] != UNUSED], (*KEY_COLUMNS, *TOKEN_COLUMNS)),
        )
    version = inputs.prices.version
    decisions = {
        item.window.start: decide(
            item, recorded.get(item.window.start), contents.get(item.window.start, EMPTY_CONTENT), version,
            closed_before, hold_fewer_rows=reprice_reason is not None,
        )
        for item in planned
    }
    report = UploadReport()
    if upload:
        with timed(steps, "pricing"):  # the summary rows, encoded for the upload
            windows = [
                (
                    item.window.start,
                    upload_records(
                        priced.frame, window=item.window, final=item.final, revision=revision, price_version=version
                    ),
                )
                for item in planned
                if decisions[item.window.start] == "upload"
            ]
        with timed(steps, "upload"):
            report = upload_windows(inputs.clients.ingestion, upload_policy(settings), windows, sleep=sleep)

    done = Recomputed(revision, priced, usage, report, contents)
    uploaded = set(report.windows_uploaded)
    for item in planned:
        start = item.window.start
        previous, content, status = recorded.get(start), contents.get(start, EMPTY_CONTENT), decisions[start]
        if status == "upload":
            status = "uploaded" if start in uploaded else "changed" if not upload else "failed"
            if status == "uploaded":
                done.progress.append(
                    WindowProgress(
                        start, item.final, revision, content.fingerprint, content.rows, version,
                        content.usage_fingerprint, content.unpriced_models, reprice_reason,
                    )
                )  # fmt: skip
            restated = restatement(item, previous, content, version, closed_before)
            if restated is not None and status != "failed":
                done.restated.append(restated)
        elif status == "empty" and (previous is None or previous.final != item.final):
            done.progress.append(
                WindowProgress(start, item.final, revision, EMPTY_FINGERPRINT, 0, version, EMPTY_FINGERPRINT, ())
            )
        elif status == "held" and previous is not None:
            done.held.append(Held(item.window, previous.price_version))
            if previous.final != item.final:  # final now, with the rows it has: the watermark may pass it
                done.progress.append(replace(previous, final=item.final))
        done.outcomes.append(WindowOutcome(item.window, item.final, content.rows, status))
    return done


def restatement_line(restated: Sequence[Restatement], price_version: str) -> str:
    """The run's one log line on the windows it restated."""
    were = sorted({item.previous_price_version or "not recorded" for item in restated})
    newly_priced = sorted({model for item in restated for model in item.newly_priced})
    # Same version on both sides: a deployment became priced (ARM, deployments.json), not the table.
    prices = f"prices {price_version} (same version)" if were == [price_version] else (
        f"prices {', '.join(were)} -> {price_version}"
    )
    line = (
        f"costs run restated {len(restated)} windows ({window_list([item.window for item in restated])}): {prices}; "
        + (f"newly priced: {', '.join(newly_priced)}" if newly_priced else "no model newly priced")
    )
    closed = [item.window for item in restated if item.closed_month]
    if closed:
        line += (
            f"; {len(closed)} of them in a closed month ({window_list(closed)}), restated with prices "
            f"{price_version} because their usage changed (late metrics)"
        )
    return line


def held_line(held: Sequence[Held], price_version: str) -> str:
    """The run's one log line on the closed-month windows it did not reprice."""
    windows = [item.window for item in held]
    kept = sorted({item.price_version or "not recorded" for item in held})
    first_day, last_day = windows[0].start.date(), (windows[-1].end - timedelta(microseconds=1)).date()
    return (
        f"costs run held {len(held)} windows of a closed month ({window_list(windows)}) at the prices they were "
        f"uploaded with ({', '.join(kept)}): only their prices changed (now {price_version}), not their usage; "
        f"a closed month is repriced only on purpose: python -m tools.reprice --from {first_day} "
        f"--to {last_day + timedelta(days=1)} --reason '...'"
    )


def window_list(windows: Sequence[Window]) -> str:
    """Window starts for a log line: each one when few, else the span."""
    if len(windows) <= _LISTED_WINDOWS:
        return ", ".join(f"{window.start:%Y-%m-%d %H:%M}" for window in windows) + " UTC"
    return f"{windows[0].start:%Y-%m-%d %H:%M}–{windows[-1].end:%Y-%m-%d %H:%M} UTC"


def _contents(
    priced: PricedUsage,
    deployments: DeploymentMap,
    fingerprints: dict[datetime, str],
    usage_fingerprints: dict[datetime, str],
) -> dict[datetime, WindowContent]:
    frame = priced.frame
    # Only models without a price: a row flagged for inconsistent usage has a priced model. A provisioned
    # deployment is named with its reason ("key: no PTU-hour price"), so it is matched by its key too.
    by_key: dict[str, set[str]] = defaultdict(set)
    for name in priced.unpriced_models:
        by_key[name.split(": ", 1)[0]].add(name)
    unpriced: dict[datetime, set[str]] = defaultdict(set)
    if not frame.empty:
        flagged = frame.loc[frame["Unpriced"], ["WindowStart", "Deployment"]].drop_duplicates()
        for start, deployment in flagged.itertuples(index=False):
            unpriced[start.to_pydatetime()].update(by_key.get(deployments.price_key_for(str(deployment)), ()))
    return {
        start: WindowContent(
            fingerprint,
            usage_fingerprints.get(start, EMPTY_FINGERPRINT),  # a window of unused capacity only: no usage
            int(fingerprint.split(":")[0]),
            tuple(sorted(unpriced[start])),
        )
        for start, fingerprint in fingerprints.items()
    }
