"""The costs progress store's contract, held by both implementations: the table one on Azurite and
its in-memory twin (used by the benchmark and the crash test). A twin that drifts fails here."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import replace

import pytest

from shared.azure_clients import open_table
from shared.costs.progress import InMemoryProgressStore, ProgressStore, TableProgressStore, WindowProgress, row_key
from tests.support.contract import IMPLEMENTATIONS, store_handles

UTC = dt.UTC
H = dt.timedelta(hours=1)
DAY = dt.datetime(2026, 11, 27, tzinfo=UTC)
REVISION = dt.datetime(2026, 11, 27, 10, 20, 1, 123456, tzinfo=UTC)
CET = dt.timezone(dt.timedelta(hours=1))

OpenStore = Callable[[], ProgressStore]  # another handle on the same store (the next run's client)


@pytest.fixture(params=IMPLEMENTATIONS)
def open_store(request: pytest.FixtureRequest) -> OpenStore:
    scope = "workspace/abc#v2?60min"  # characters a PartitionKey may not hold
    return store_handles(request, InMemoryProgressStore, lambda table: TableProgressStore(table, scope))


def window(hour: int, *, final: bool = True, rows: int = 3, fingerprint: str = "f") -> WindowProgress:
    return WindowProgress(DAY + hour * H, final, REVISION, fingerprint, rows)


def test_a_new_store_has_no_watermark_and_no_windows(open_store: OpenStore) -> None:
    store = open_store()
    assert store.final_through() is None
    assert store.windows(DAY - 365 * 24 * H) == {}


def test_saved_windows_come_back_from_their_start_on(open_store: OpenStore) -> None:
    open_store().save([window(7), window(8, final=False, rows=0), window(9, fingerprint="g" * 64)], DAY + 8 * H)
    store = open_store()
    assert store.final_through() == DAY + 8 * H
    assert store.windows(DAY) == {w.window_start: w for w in (window(7), window(8, final=False, rows=0),
                                                              window(9, fingerprint="g" * 64))}  # fmt: skip
    assert list(store.windows(DAY + 8 * H)) == [DAY + 8 * H, DAY + 9 * H]  # in time order
    assert store.windows(DAY + 10 * H) == {}


def test_times_come_back_as_plain_utc_and_windows_are_told_apart_to_the_second(open_store: OpenStore) -> None:
    store = open_store()
    in_cet = WindowProgress((DAY + 7 * H).astimezone(CET), True, REVISION.astimezone(CET), "f", 1)
    store.save([in_cet], (DAY + 8 * H).astimezone(CET))
    [(start, saved)] = store.windows(DAY).items()
    assert start == DAY + 7 * H and start.tzinfo == UTC and saved == window(7, rows=1)
    assert saved.revision.tzinfo == UTC and saved.revision.microsecond == 123456
    final_through = store.final_through()
    assert final_through == DAY + 8 * H and final_through is not None and final_through.tzinfo == UTC
    # The row key is the start to the second: `since` inside that second still finds the window.
    assert list(store.windows(DAY + 7 * H + dt.timedelta(microseconds=900_000))) == [DAY + 7 * H]


def test_saving_a_window_again_replaces_it(open_store: OpenStore) -> None:
    store = open_store()
    store.save([window(7, final=False, rows=2)], None)
    later = replace(window(7, rows=5, fingerprint="h"), revision=REVISION + H)
    store.save([later], None)
    assert store.windows(DAY) == {DAY + 7 * H: later}
    assert store.final_through() is None  # no watermark given: none recorded


def test_the_watermark_never_moves_back(open_store: OpenStore) -> None:
    store = open_store()
    store.save([], DAY + 10 * H)
    store.save([window(3)], DAY + 4 * H)  # a recompute of an old window keeps the watermark where it was
    store.save([], None)
    assert store.final_through() == DAY + 10 * H
    store.save([], DAY + 11 * H)
    assert open_store().final_through() == DAY + 11 * H
    assert list(store.windows(DAY)) == [DAY + 3 * H]  # the watermark is not a window


def test_more_windows_than_one_table_transaction_holds(open_store: OpenStore) -> None:
    many = [WindowProgress(DAY + index * H, True, REVISION, f"f{index}", index) for index in range(250)]
    open_store().save(many, DAY + 250 * H)
    assert list(open_store().windows(DAY).values()) == many


def test_what_an_upload_was_priced_with_comes_back_and_the_next_save_replaces_all_of_it(open_store: OpenStore) -> None:
    repriced = replace(
        window(7),
        price_version="2026-11-30.2",
        usage_fingerprint="3:00000000000000ab",
        unpriced_models=("gpt-9 (version 2026-01-01, DataZoneStandard)", "mystery-model"),
        reprice_reason="gpt-9 priced from 2026-11-01 (ticket 42)",
    )
    open_store().save([repriced], None)
    assert open_store().windows(DAY) == {DAY + 7 * H: repriced}
    # A later upload without a reason: the reason described the upload it replaced, so it goes with it.
    later = replace(repriced, revision=REVISION + H, unpriced_models=(), reprice_reason=None)
    open_store().save([later], None)
    [saved] = open_store().windows(DAY).values()
    assert saved == later and saved.reprice_reason is None and saved.unpriced_models == ()


def test_an_entity_written_before_the_price_columns_reads_them_as_not_known(azurite: str) -> None:
    table = open_table("Contract" + uuid.uuid4().hex[:8], connection_string=azurite, purpose="contract test")
    table.upsert_entity({"PartitionKey": "scope", "RowKey": row_key(DAY + 7 * H), "WindowStart": DAY + 7 * H,
                         "Final": True, "Revision": REVISION, "Fingerprint": "f", "Rows": 3})  # fmt: skip
    [old] = TableProgressStore(table, "scope").windows(DAY).values()
    assert old == window(7)
    assert (old.price_version, old.usage_fingerprint, old.unpriced_models, old.reprice_reason) == (None,) * 4
