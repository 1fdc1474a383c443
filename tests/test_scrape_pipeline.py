"""A full scrape cycle against the simulator (a separate process on loopback) into a real DuckDB
file, and the same into a real PostgreSQL database."""

from __future__ import annotations

import json

import polars as pl
import pytest

from engine.config import BOOKS
from engine.pipeline.cycle import run_cycle_sync
from engine.simulator.process import start_simulator
from engine.store import Store
from tests.conftest import sim_settings, world_of

pytestmark = pytest.mark.integration
KEY = ["sr_id", "bookmaker", "market", "line", "outcome"]


def truth_frame(world, epoch: int, pairs=None) -> pl.DataFrame:
    rows = []
    for ev in world.events:
        for book in sorted(ev.books):
            if pairs is not None and (ev.sr_id, book) not in pairs:
                continue
            for p in world.quotes(book, ev.sr_id, epoch):
                rows.append((ev.sr_id, book, p.market, p.line, p.outcome, p.odds, p.available))
    return pl.DataFrame(rows, schema={"sr_id": pl.String, "bookmaker": pl.String, "market": pl.String,
                                      "line": pl.Float64, "outcome": pl.String, "odds": pl.Float64,
                                      "available": pl.Boolean}, orient="row")


def stored_frame(store: Store) -> pl.DataFrame:
    return store.current_prices().select([*KEY, "odds", "available"])


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> tuple[int, int]:
    """(rows only in a, rows only in b), comparing lines null-safely."""
    fa = a.with_columns(pl.col("line").fill_null(-999.0)).sort(KEY)
    fb = b.with_columns(pl.col("line").fill_null(-999.0)).sort(KEY)
    only_a = fa.join(fb, on=[*KEY, "odds", "available"], how="anti")
    only_b = fb.join(fa, on=[*KEY, "odds", "available"], how="anti")
    return only_a.height, only_b.height


def settings_for(sim, target, **overrides):
    """Settings naming the simulator and the test's store (DuckDB file or PostgreSQL database)."""
    return sim_settings(sim, target.db_path, database_url=target.database_url, **overrides)


def test_one_cycle_stores_exactly_the_simulators_prices(sim, store_target):
    store = store_target.store()
    summary = run_cycle_sync(settings_for(sim, store_target), store, trigger="test")
    assert summary.status == "COMPLETED", summary.error
    world = world_of(sim)
    assert summary.events_total == len(world.events)
    missing, extra = same_rows(truth_frame(world, sim.state()["epoch"]), stored_frame(store))
    assert (missing, extra) == (0, 0)
    run = store.run(summary.run_id)
    assert run["status"] == "COMPLETED"
    progress = store.run_progress(summary.run_id)
    done = [d for d in progress["batches_done"].to_list() if d is not None]
    assert done == sorted(done) and done[-1] == summary.batches_total  # the bar never goes backwards
    kinds = progress["kind"].to_list()
    assert kinds[0] == "CYCLE_START" and kinds[-1] == "CYCLE_COMPLETE"
    assert {"DISCOVERY_COMPLETE", "BATCH_START", "BATCH_COMPLETE"} <= set(kinds)
    # Every event has a status row naming the books requested and scraped.
    status = store.event_status(summary.run_id)
    assert status.height == len(world.events)
    # The noise markets the books add are counted, not dropped.
    unmapped = store.unmapped()
    assert unmapped.height > 0 and set(unmapped["bookmaker"]) == set(BOOKS)


def test_second_cycle_after_drift_writes_history_only_for_changed_prices(store_target):
    with start_simulator(seed=11, events=30) as sim:
        store = store_target.store()
        settings = settings_for(sim, store_target)
        first = run_cycle_sync(settings, store, trigger="test")
        assert first.status == "COMPLETED", first.error
        sim.advance(1)
        second = run_cycle_sync(settings, store, trigger="test")
        assert second.status == "COMPLETED", second.error
        world = world_of(sim)
        epoch = sim.state()["epoch"]
        expected = {
            (ev.sr_id, book, *key)
            for ev in world.events for book in ev.books
            for key in world.changed_prices(book, ev.sr_id, epoch)
        }
        hist = store.query("SELECT sr_id, bookmaker, market, line, outcome FROM odds_history WHERE run_id = ?",
                           [second.run_id])
        got = {(r[0], r[1], r[2], r[3], r[4]) for r in hist.iter_rows()}
        assert expected, "the simulator moved no price"
        assert got == expected
        missing, extra = same_rows(truth_frame(world, epoch), stored_frame(store))
        assert (missing, extra) == (0, 0)


def test_faults_end_partial_store_every_good_event_and_record_each_failure(store_target):
    faults = ("all:latency=5,scope=detail;betpawa:500=0.1,429=0.1;sportybet:503=0.1,malformed=0.1;"
              "bet9ja:timeout=0.05,truncated=0.1")
    with start_simulator(seed=5, events=40, faults=faults) as sim:
        store = store_target.store()
        summary = run_cycle_sync(settings_for(sim, store_target, attempts=1, request_timeout_s=1.0), store,
                                 trigger="test")
        assert summary.status == "PARTIAL", summary.error
        status = store.event_status(summary.run_id)
        failures = []
        good = set()
        for r in status.iter_rows(named=True):
            errors = r["errors"] if isinstance(r["errors"], dict) else json.loads(r["errors"] or "{}")
            failed = r["books_failed"] if not isinstance(r["books_failed"], str) else json.loads(r["books_failed"])
            scraped = r["books_scraped"] if not isinstance(r["books_scraped"], str) else json.loads(r["books_scraped"])
            for b in failed:
                failures.append(errors[b])
            good.update((r["sr_id"], b) for b in scraped)
        assert failures, "no failure was injected"
        kinds = {f.split(":")[0] for f in failures}
        assert {"http_status", "malformed", "timeout"} <= kinds
        world = world_of(sim)
        missing, extra = same_rows(truth_frame(world, sim.state()["epoch"], pairs=good), stored_frame(store))
        assert (missing, extra) == (0, 0)
        assert summary.books["bet9ja"].failed > 0 and summary.books["betpawa"].failed > 0


def test_unreachable_book_ends_connection_failed_and_keeps_the_others(store_target):
    with start_simulator(seed=3, events=10) as sim:
        store = store_target.store()
        settings = settings_for(sim, store_target, sportybet_url="http://127.0.0.1:9", attempts=1)
        summary = run_cycle_sync(settings, store, trigger="test")
        assert summary.status == "CONNECTION_FAILED"
        assert "sportybet" in summary.error
        books = set(store.current_prices()["bookmaker"].unique())
        assert books == {"betpawa", "bet9ja"}
