"""One writer process storing batches while four reader processes query the same DuckDB file:
no process ever sees an error (no "Could not set lock on file"), and everything the writer
committed is there afterwards. Duration: ODDSDESK_STORE_CONCURRENCY_S (default 20 s)."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import traceback
from datetime import UTC, datetime, timedelta

import polars as pl

from engine.store import Store
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow

DURATION_S = float(os.environ.get("ODDSDESK_STORE_CONCURRENCY_S", "20"))
BOOKS = ("betpawa", "sportybet", "bet9ja")
EVENTS = [str(62_000_000 + 17 * i) for i in range(40)]
PER_BATCH = 10
MARKETS = [("1x2_ft", None, ("home", "draw", "away"))] + [
    ("over_under_ft", line, ("over", "under")) for line in (1.5, 2.5, 3.5)]


def writer_batch(run_id: int, k: int, at: datetime) -> BatchWrite:
    """Batch k: ten events, every book; odds move with k and O/U 3.5 comes and goes."""
    sr_ids = [EVENTS[(k * PER_BATCH + i) % len(EVENTS)] for i in range(PER_BATCH)]
    rows = []
    for sr_id in sr_ids:
        for b, book in enumerate(BOOKS):
            for market, line, outcomes in MARKETS:
                if line == 3.5 and (k + b) % 3 == 0:
                    continue
                for o, outcome in enumerate(outcomes):
                    odds = round(1.5 + o + ((k // 4 + b + o + int(sr_id)) % 5) / 20, 2)
                    rows.append((sr_id, book, market, line, outcome, odds, True))
    return BatchWrite(
        run_id=run_id, batch_no=k + 1, observed_at=at,
        events=[EventRow(s, at + timedelta(days=1), "England", "Premier League", f"H{s}", f"A{s}") for s in sr_ids],
        book_events=[BookEventRow(b, f"{b}-{s}", s) for s in sr_ids for b in BOOKS],
        prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
        scraped=[(s, b) for s in sr_ids for b in BOOKS],
        statuses=[ScrapeStatusRow(s, BOOKS, BOOKS, (), {}, 50) for s in sr_ids],
        unmapped=pl.DataFrame([("bet9ja", "S_XYZ", "", "UNKNOWN_MARKET", "", 1)], schema=UNMAPPED_SCHEMA, orient="row"),
    )


def write_loop(path: str, seconds: float, out: mp.Queue) -> None:
    try:
        store = Store(path)
        run_id = store.start_run("concurrency", list(BOOKS))
        latest: dict[tuple[str, str], list[tuple]] = {}
        history = batches = 0
        start = datetime.now(UTC)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = writer_batch(run_id, batches, start + timedelta(seconds=batches))
            history += store.store_batch(batch).history_rows
            batches += 1
            for (sr_id, book), group in batch.prices.group_by("sr_id", "bookmaker"):
                latest[(sr_id, book)] = sorted(group.select("market", "line", "outcome", "odds").rows(), key=str)
            if batches % 10 == 0:
                store.heartbeat(run_id)
        store.finish_run(run_id, "COMPLETED", {"events_scraped": batches * PER_BATCH})
        out.put(("writer", {"run_id": run_id, "batches": batches, "history": history, "latest": latest}))
    except BaseException:
        out.put(("writer", {"error": traceback.format_exc()}))


def read_loop(path: str, seconds: float, seed: int, out: mp.Queue) -> None:
    rng = random.Random(seed)
    store = Store(path)
    ops = 0
    last_history = 0
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            prices = store.current_prices(sr_ids=[rng.choice(EVENTS)])
            assert prices.is_empty() or set(prices["bookmaker"]) <= set(BOOKS)
            store.runs(limit=5)
            n = store.query("SELECT count(*) AS n FROM odds_history")["n"][0]
            assert n >= last_history, f"history went back from {last_history} to {n}"
            last_history = n
            ops += 3
        except BaseException:
            errors.append(traceback.format_exc())
            if len(errors) > 3:
                break
    out.put((f"reader{seed}", {"ops": ops, "errors": errors}))


def test_one_writer_and_four_readers_share_the_file_without_errors(tmp_path):
    path = str(tmp_path / "odds.duckdb")
    Store(path).table_counts()  # schema exists before the processes race
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=write_loop, args=(path, DURATION_S, out))]
    procs += [ctx.Process(target=read_loop, args=(path, DURATION_S, seed, out)) for seed in range(4)]
    for p in procs:
        p.start()
    reports = dict(out.get(timeout=DURATION_S + 120) for _ in procs)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    writer = reports["writer"]
    assert "error" not in writer, writer.get("error")
    readers = [reports[f"reader{s}"] for s in range(4)]
    assert [r["errors"] for r in readers] == [[], [], [], []]
    assert writer["batches"] >= 10 and all(r["ops"] >= 30 for r in readers)

    store = Store(path)
    run = store.run(writer["run_id"])
    assert run["status"] == "COMPLETED"
    progress = store.run_progress(writer["run_id"])
    assert progress.filter(pl.col("kind") == "BATCH_COMPLETE").height == writer["batches"]
    assert store.table_counts()["odds_history"] == writer["history"]
    current = store.current_prices(available_only=True)
    for (sr_id, book), expected in writer["latest"].items():
        got = current.filter((pl.col("sr_id") == sr_id) & (pl.col("bookmaker") == book))
        assert sorted(got.select("market", "line", "outcome", "odds").rows(), key=str) == expected
