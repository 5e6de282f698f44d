"""The chaos soak's parts (bench/soak): its stepped clock and its email check. The soak itself runs on demand
(`make soak`), never in the suite: it takes half an hour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest

from bench.soak.checks import check_emails
from bench.soak.clock import SteppedClock, build_library
from shared.alerts.findings import notification_ref
from shared.alerts.state import AlertRecord

CHILD = """
import datetime, json, threading, time
wall = time.time()
start = time.monotonic()
threading.Event().wait(0.05)  # a timed wait on the monotonic clock returns in real time
time.sleep(0.05)
print(json.dumps({"wall": wall, "datetime": datetime.datetime.now(datetime.UTC).timestamp(),
                  "waited": time.monotonic() - start}))
"""


def _child_clock(clock: SteppedClock) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD], env={**os.environ, **clock.environment()},
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_every_child_reads_the_stepped_wall_clock_while_waits_stay_real(tmp_path: Path) -> None:
    clock = SteppedClock(tmp_path)
    try:
        before = _child_clock(clock)
        assert abs(before["wall"] - time.time()) < 30  # offset 0: the real clock
        target = datetime.now(UTC) + timedelta(days=3, hours=2)
        step = clock.advance_to(target)
        assert timedelta(days=3, hours=1) < step <= timedelta(days=3, hours=2)
        assert clock.advance_to(target - timedelta(hours=1)) == timedelta(0)  # never backwards
        after = _child_clock(clock)
        assert abs(after["wall"] - target.timestamp()) < 30 and abs(after["datetime"] - after["wall"]) < 5
        assert abs(clock.now().timestamp() - time.time() - step.total_seconds()) < 1
        assert 0.09 <= after["waited"] < 5  # Event.wait and sleep: real seconds, not scaled, no EINVAL
    finally:
        clock.close()


def test_the_clock_library_is_rebuilt_only_when_its_source_changed(tmp_path: Path) -> None:
    library = build_library(tmp_path)
    built = library.stat().st_mtime_ns
    assert build_library(tmp_path) == library and library.stat().st_mtime_ns == built


def _eml(outbox: Path, name: str, message_id: str, refs: list[tuple[str, ...]], *, smtp: bool = True) -> None:
    """refs: (ref, rule) or (ref, rule, first line of the item)."""
    message = EmailMessage()
    if smtp:
        message["Return-Path"] = "<alerts@localhost>"  # what the SMTP outbox adds; the ACS one does not
    message["Message-ID"] = message_id
    message["Subject"] = "alerts"
    heads = [(*ref, "[WARNING] x: $1")[2] for ref in refs]
    body = "".join(
        f"{head}\n  Rule: {ref[1]} in rules.json\n  Ref:  {ref[0]}\n" for head, ref in zip(heads, refs, strict=True)
    )
    message.set_content("AI gateway cost alerts\n\n" + body)
    (outbox / name).write_bytes(message.as_bytes())


def test_the_email_check_counts_duplicates_resends_pending_lost_and_oracle_misses(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    budget = AlertRecord(key="daily|", rule="daily", member="", notified_period="2026-12-02", notified_level="100%")
    user = AlertRecord(key="per-user|u1", rule="per-user", member="u1", notified_period="2026-12-01T10",
                       notified_level="warning")  # fmt: skip
    day1 = notification_ref(budget.key, "2026-12-01", "100%", "fired")
    day2 = notification_ref(budget.key, "2026-12-02", "100%", "escalated")
    user_ref = notification_ref(user.key, "2026-12-01T10", "warning", "fired")
    _eml(outbox, "1.eml", "<a@x>", [(day1, "daily"), (user_ref, "per-user")])
    # The same email again: the residual case, not a duplicate.
    _eml(outbox, "2.eml", "<a@x>", [(day1, "daily"), (user_ref, "per-user")])
    # Another email with the same notification: a duplicate; and a pipeline-health rule that spoke: a false alarm.
    _eml(outbox, "3.eml", "<b@x>", [(user_ref, "per-user"), ("feedfacefeedface", "recon")], smtp=False)
    pending = replace(user, key="per-user|u2", member="u2", notified_period="", notified_level="",
                      pending_kind="fired", pending_period="2026-12-01T11", pending_level="warning")  # fmt: skip
    records = {record.key: record for record in (budget, user, pending)}
    spend = {"2026-12-01": Decimal("0.30"), "2026-12-02": Decimal("0.09"), "2026-12-03": Decimal("0.03"),
             "2026-12-04": Decimal("0.02")}  # fmt: skip
    kinds = {"daily": "budget", "per-user": "threshold", "recon": "reconciliation"}
    result = check_emails(outbox, records, ("daily", Decimal("0.05"), (Decimal(50), Decimal(100))), spend, kinds)
    assert (result.emails, result.distinct_emails, result.resent_same_email) == (3, 2, 1)
    assert result.by_transport == {"smtp": 2, "acs": 1} and result.notifications == 3
    assert result.per_rule == {"daily": 1, "per-user": 1, "recon": 1}
    assert result.false_alarms == ["recon x  (ref feedfacefeedface)"]
    assert result.duplicates == [f"ref {user_ref} (per-user, x) in emails 0 and 2"]
    assert result.pending_at_end == ["per-user|u2 fired 2026-12-01T11 warning"]
    # The state says day 2 was mailed at 100%, and no email carries it. The oracle wants each day's highest level
    # reached once: day 2's 100% and day 3's 50% are missing; day 4 (40%) reached no level.
    assert result.sent_not_mailed == ["daily| 2026-12-02 100%"] and day2 not in {day1, user_ref}
    assert result.oracle_days == 3
    assert result.oracle_misses == ["daily 2026-12-02: spent 0.09, 100% in 0 emails",
                                    "daily 2026-12-03: spent 0.03, 50% in 0 emails"]  # fmt: skip
    assert not result.ok


@pytest.mark.parametrize("refs", [[], [("0123456789abcdef", "daily")]])
def test_an_outbox_that_holds_each_notification_once_passes(tmp_path: Path, refs: list[tuple[str, str]]) -> None:
    _eml(tmp_path, "1.eml", "<a@x>", refs)
    result = check_emails(tmp_path, {}, None, {})
    assert result.ok and result.notifications == len(refs)


def test_the_same_level_mailed_again_after_a_resolve_is_a_new_incident_not_a_duplicate(tmp_path: Path) -> None:
    fired = notification_ref("recon|team-a", "2026-12-01", "critical", "fired")
    resolved = notification_ref("recon|team-a", "2026-12-01", "critical", "resolved")
    other = notification_ref("recon|team-b", "2026-12-01", "critical", "fired")
    _eml(tmp_path, "1.eml", "<a@x>", [(fired, "recon", "[CRITICAL] subscription team-a: 8% fewer"),
                                      (other, "recon", "[CRITICAL] subscription team-b: 9% fewer")])  # fmt: skip
    _eml(tmp_path, "2.eml", "<b@x>", [(resolved, "recon", "[RESOLVED] subscription team-a: resolved, 0%")])
    _eml(tmp_path, "3.eml", "<c@x>", [(fired, "recon", "[CRITICAL] subscription team-a: 11% fewer"),
                                      (other, "recon", "[CRITICAL] subscription team-b: 9% fewer")])  # fmt: skip
    _eml(tmp_path, "4.eml", "<d@x>", [(resolved, "recon", "[RESOLVED] subscription team-a: resolved, 0%")])
    result = check_emails(tmp_path, {}, None, {})
    # team-a fired, resolved, fired again, resolved again: each mailed twice by design; team-b was never resolved in
    # between: a duplicate.
    assert result.refired_after_resolve == 2
    assert result.duplicates == [f"ref {other} (recon, subscription team-b) in emails 0 and 2"]


def test_a_health_alarm_on_a_window_holding_a_late_metric_row_is_counted_apart(tmp_path: Path) -> None:
    def item(ref: str, window: str) -> str:
        return f"[CRITICAL] deployment d: gap\n  Window:    {window}\n  Rule: bypass in r.json\n  Ref:  {ref}\n"

    message = EmailMessage()
    message["Message-ID"] = "<a@x>"
    message.set_content(item("a" * 16, "2026-12-01 23:00–01:00 UTC") + item("b" * 16, "2026-12-01 03:00–04:00 UTC"))
    (tmp_path / "1.eml").write_bytes(message.as_bytes())
    late = [datetime(2026, 12, 2, 0, 40, tzinfo=UTC)]  # inside the first window, which crosses midnight
    result = check_emails(tmp_path, {}, None, {}, {"bypass": "bypass"}, late)
    assert result.late_row_alarms == 1
    assert result.false_alarms == ["bypass deployment d 2026-12-01 03:00–04:00 UTC (ref bbbbbbbbbbbbbbbb)"]
