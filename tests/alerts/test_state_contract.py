"""The alert state store's contract, held by both implementations: the table one on Azurite and its
in-memory twin. A twin that drifts from the table (ETags, lost races, round trips) fails here."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.alerts.state import AlertRecord, AlertStateStore, InMemoryAlertStateStore, TableAlertStateStore
from tests.support.contract import IMPLEMENTATIONS, store_handles

HOSTILE_USER = "<img src=x onerror=alert(1)>"
NOW = dt.datetime(2026, 11, 27, 10, 20, tzinfo=dt.UTC)
CET = dt.timezone(dt.timedelta(hours=1))

OpenStore = Callable[[], AlertStateStore]  # another handle on the same store (another run's client)


@pytest.fixture(params=IMPLEMENTATIONS)
def open_store(request: pytest.FixtureRequest) -> OpenStore:
    return store_handles(request, InMemoryAlertStateStore, TableAlertStateStore)


def test_a_write_based_on_a_stale_etag_loses(open_store: OpenStore) -> None:
    one, two = open_store(), open_store()
    created = one.write(AlertRecord("rule|<img src=x onerror=alert(1)>/#?\\", "rule", HOSTILE_USER))
    assert created is not None
    assert one.write(AlertRecord(created.key, "rule", HOSTILE_USER)) is None  # insert of an existing key
    read_by_one, read_by_two = one.load()[created.key], two.load()[created.key]
    assert read_by_one.member == HOSTILE_USER
    assert one.write(read_by_one.__class__(**{**read_by_one.__dict__, "claimed_by": "run-1"})) is not None
    assert two.write(read_by_two.__class__(**{**read_by_two.__dict__, "claimed_by": "run-2"})) is None
    assert two.load()[created.key].claimed_by == "run-1"


def test_every_field_round_trips_and_times_come_back_in_utc(open_store: OpenStore) -> None:
    store = open_store()
    record = AlertRecord(
        key="budget|" + "sub/with#odd?chars\\" + "é" * 400,  # past the row key's length: hashed there
        rule="budget", member="sub/with#odd?chars\\" + "é" * 400, open=True,
        notified_period="2026-11-26", notified_level="50%", notified_rank=1,
        pending_kind="escalated", pending_period="2026-11-27", pending_level="80%", pending_rank=2,
        pending_severity="warning", pending_subject="all traffic: $0.80 today\n<b>", pending_since=NOW.astimezone(CET),
        message_id="<alerts.run-1.0123456789ab@example.com>", send_attempts=2,
        delivered_channels=frozenset({"email", "slack"}),
        claimed_by="run-1", claimed_until=NOW + dt.timedelta(minutes=10), sent_at=NOW - dt.timedelta(days=1),
    )  # fmt: skip
    written = store.write(record)
    assert written is not None and written.etag and written == replace(record, etag=written.etag)
    [loaded] = open_store().load().values()
    assert loaded == replace(written, pending_since=NOW)  # the same instant, as UTC
    assert loaded.pending_since is not None and loaded.pending_since.tzinfo == dt.UTC
    cleared = store.write(replace(loaded, **{"pending_since": None, "claimed_until": None, "sent_at": None}))
    assert cleared is not None
    [reloaded] = store.load().values()
    assert (reloaded.pending_since, reloaded.claimed_until, reloaded.sent_at) == (None, None, None)


def test_an_update_needs_the_current_etag_and_a_record_that_exists(open_store: OpenStore) -> None:
    store = open_store()
    first = store.write(AlertRecord("r|a", "r", "a"))
    assert first is not None and first.etag is not None
    second = store.write(replace(first, open=True))
    assert second is not None and second.etag not in (None, first.etag)
    assert store.write(replace(first, notified_level="again")) is None  # the first ETag is stale now
    assert store.load()["r|a"] == second  # the loser changed nothing
    assert store.write(replace(first, key="r|gone", member="gone")) is None  # an update of a record not stored
    assert set(store.load()) == {"r|a"}
    assert store.write(AlertRecord("r|b", "r", "b")) is not None  # other keys are independent
    assert set(store.load()) == {"r|a", "r|b"}


def test_of_overlapping_claims_exactly_one_wins(open_store: OpenStore) -> None:
    created = open_store().write(AlertRecord("r|a", "r", "a", pending_kind="fired"))
    assert created is not None
    runs = [open_store() for _ in range(6)]
    reads = [run.load()["r|a"] for run in runs]  # every run read the record before any claimed it
    results: dict[int, AlertRecord | None] = {}

    def claim(index: int) -> None:
        lease = NOW + dt.timedelta(minutes=10)
        results[index] = runs[index].write(replace(reads[index], claimed_by=f"run-{index}", claimed_until=lease))

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(len(runs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [index for index, result in results.items() if result is not None]
    assert len(results) == len(runs) and len(winners) == 1
    assert open_store().load()["r|a"].claimed_by == f"run-{winners[0]}"


def test_a_claim_blocks_other_runs_until_its_lease_ends_then_can_be_taken_over(open_store: OpenStore) -> None:
    store = open_store()
    created = store.write(AlertRecord("r|a", "r", "a", pending_kind="fired"))
    assert created is not None
    claimed = store.write(replace(created, claimed_by="run-1", claimed_until=NOW + dt.timedelta(minutes=10)))
    assert claimed is not None
    seen = open_store().load()["r|a"]
    assert seen.claimed_by_other("run-2", NOW + dt.timedelta(minutes=9)) and not seen.claimed_by_other("run-1", NOW)
    assert not seen.claimed_by_other("run-2", NOW + dt.timedelta(minutes=10))  # the lease ended
    taken = open_store().write(replace(seen, claimed_by="run-2", claimed_until=NOW + dt.timedelta(minutes=20)))
    assert taken is not None
    assert store.write(claimed.sent(NOW)) is None  # the crashed run's late write loses to the takeover
    assert store.load()["r|a"].claimed_by == "run-2"
