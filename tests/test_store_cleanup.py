"""Retention: what is older than the windows goes, what is newer stays untouched; and the
history re-sort that keeps one event's history fast returns exactly the same history (DuckDB
and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.store import Store
from engine.store.schema import PG_INDEXES
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow

NOW = datetime.now(UTC)


def batch(run_id: int, at: datetime, sr_id: str, kickoff: datetime, odds: float) -> BatchWrite:
    rows = [(sr_id, book, "1x2_ft", None, outcome, odds + i / 10, True)
            for book in ("betpawa", "bet9ja") for i, outcome in enumerate(("home", "draw", "away"))]
    return BatchWrite(
        run_id=run_id, batch_no=1, observed_at=at,
        events=[EventRow(sr_id, kickoff, "England", "Premier League", f"Home {sr_id}", f"Away {sr_id}")],
        book_events=[BookEventRow("betpawa", f"bp{sr_id}", sr_id), BookEventRow("bet9ja", f"b9{sr_id}", sr_id)],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
        scraped=[(sr_id, "betpawa"), (sr_id, "bet9ja")],
        statuses=[ScrapeStatusRow(sr_id, ("betpawa", "bet9ja"), ("betpawa", "bet9ja"), (), {}, 80)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
    )


@pytest.fixture
def store(store_target) -> Store:
    return store_target.store()


def test_cleanup_deletes_only_what_is_past_retention(store, store_target):
    old_run = store.start_run("scheduled", ["betpawa", "bet9ja"])
    store.store_batch(batch(old_run, NOW - timedelta(days=20), "1001", NOW - timedelta(days=19), 2.0))
    store.store_batch(batch(old_run, NOW - timedelta(days=20), "1002", NOW + timedelta(days=2), 3.0))
    store.finish_run(old_run, "COMPLETED", {})
    store.update_run(old_run, started_at=NOW - timedelta(days=40), finished_at=NOW - timedelta(days=40))
    stuck = store.start_run("scheduled", ["betpawa"])
    store.update_run(stuck, started_at=NOW - timedelta(days=40))
    new_run = store.start_run("scheduled", ["betpawa", "bet9ja"])
    store.store_batch(batch(new_run, NOW - timedelta(hours=1), "1002", NOW + timedelta(days=2), 3.5))
    old_request, done_today = store.add_run_request("run_now"), store.add_run_request("run_now")
    store.claim_run_requests()
    store.finish_run_request(old_request, "DONE")
    store.finish_run_request(done_today, "FAILED", "no books reachable")
    # The API never writes past times for requests: age one behind its back.
    store_target.execute("UPDATE run_requests SET finished_at = finished_at - INTERVAL '40 days' WHERE id = ?",
                         [old_request])
    pending = store.add_run_request("run_now")

    counts = store.cleanup(history_days=14, run_days=30, cluster=False)

    assert counts["scrape_runs"] == 1 and counts["run_progress"] == 2 and counts["event_scrape_status"] == 2
    assert counts["odds_history"] == 12 and counts["odds_history_clustered"] == 0
    assert (counts["events"], counts["odds_current"], counts["bookmaker_events"]) == (1, 6, 2)
    assert counts["run_requests"] == 1
    assert store.runs()["id"].to_list() == [new_run, stuck]  # an old RUNNING run is the watchdog's, not ours
    assert store.events()["sr_id"].to_list() == ["1002"]
    assert store.current_prices()["sr_id"].unique().to_list() == ["1002"]
    history = store.odds_history("1002")
    assert history.height == 6 and set(history["run_id"]) == {new_run}
    assert store.run_requests()["id"].to_list() == [pending, done_today]


def test_resorting_history_keeps_every_row_and_groups_each_event(store, store_target):
    run_id = store.start_run("scheduled", ["betpawa", "bet9ja"])
    events = ["3003", "1001", "2002"]
    for n in range(4):
        for sr_id in events:
            store.store_batch(batch(run_id, NOW - timedelta(minutes=10 * (4 - n)), sr_id, NOW + timedelta(days=1),
                                    2.0 + n / 100))
    before = {sr_id: store.odds_history(sr_id) for sr_id in events}

    counts = store.cleanup(history_days=14, run_days=30, cluster=True)

    assert counts["odds_history_clustered"] == 4 * 3 * 6 and counts["odds_history"] == 0
    for sr_id in events:
        assert store.odds_history(sr_id).equals(before[sr_id])
    # Physically, each event's rows are one run (what lets a read skip every other row group).
    stored_order = store.query("SELECT event_no FROM odds_history_data")["event_no"].to_list()
    assert stored_order == sorted(stored_order) and len(set(stored_order)) == len(events)
    if store_target.backend == "postgres":  # the re-sorted copy took over the table's indexes
        names = store.query("SELECT indexname FROM pg_indexes WHERE tablename = 'odds_history_data'")["indexname"]
        assert set(names) == {n for n, (t, _) in PG_INDEXES.items() if t == "odds_history_data"}
    # Automatic mode leaves a small, just-sorted table alone.
    assert store.cleanup(history_days=14, run_days=30)["odds_history_clustered"] == 0
