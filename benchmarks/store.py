"""Store write throughput against a raw Arrow insert, and reader latency under a busy writer.

1. Preload ``--preload-events`` events so odds_current has production size (1,500 events ×
   3 books × ~150 prices ≈ 675k rows).
2. ``--rounds`` times, interleaved so both see the same machine noise: a raw unit of work
   (open DuckDB with the store's write settings, insert the Arrow frame into a plain table of
   its own file, commit, close, checkpoint included — the least any writer that follows the
   one-connection-per-unit rule can do), ``store_batch`` of the same frame as new prices, and
   ``store_batch`` again with ~5% of the odds changed. Rates are rows over total time.
3. A writer process keeps storing batches while a reader process times ``current_prices`` for
   one event and ``runs()``; the same reads are timed first with no writer, for comparison.
4. One event's history out of ``--history-rows`` rows, before and after ``cleanup`` re-sorts
   odds_history.

The last line is JSON; ``ratio`` = store rows/s (both passes) ÷ raw rows/s, both throughput.

``--database-url postgresql+psycopg://…`` runs the same on a PostgreSQL database (it should be an
empty one: the store's tables are created in it); the raw unit of work is then a connection
that ``COPY``s the frame into a plain table and commits.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import psycopg  # noqa: E402

from engine.config import BOOKS  # noqa: E402
from engine.markets.catalogue import load_catalogue  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.store.db import WRITE_CONFIG  # noqa: E402
from engine.store.history import append_history  # noqa: E402
from engine.store.types import (  # noqa: E402
    PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow,
)

EVENTS_PER_BATCH = 50


def sr_id(n: int) -> str:
    """Event n's SportRadar id: spread out, as a kickoff-ordered batch's ids are in reality
    (sequential ids would let DuckDB's min/max pruning flatter the store)."""
    return str(60_000_000 + (n * 7919) % 999_983)


def price_keys(per_book: int) -> list[tuple[str, float | None, str]]:
    """(market, line, outcome) of real catalogue markets, lines where they take one."""
    keys: list[tuple[str, float | None, str]] = []
    lines = (-1.5, -0.5, 0.5, 1.5, 2.5, 3.5)
    for market in load_catalogue().markets.values():
        for line in (lines if market.has_line else (None,)):
            keys.extend((market.key, line, o.key) for o in market.outcomes)
    return keys[:per_book]


def price_frame(first_event: int, events: int, keys: list[tuple], rng: np.random.Generator) -> pl.DataFrame:
    k = pl.DataFrame(keys, schema={"market": pl.String, "line": pl.Float64, "outcome": pl.String}, orient="row")
    pairs = pl.DataFrame({"sr_id": [sr_id(first_event + i) for i in range(events)]}).join(
        pl.DataFrame({"bookmaker": list(BOOKS)}), how="cross")
    frame = pairs.join(k, how="cross")
    return frame.with_columns(
        odds=pl.Series(np.round(rng.uniform(1.05, 12.0, frame.height), 2)), available=pl.lit(True),
    ).select(list(PRICE_SCHEMA)).cast(PRICE_SCHEMA)


def with_changes(frame: pl.DataFrame, share: float, rng: np.random.Generator) -> pl.DataFrame:
    moved = pl.Series(rng.random(frame.height) < share)
    return frame.with_columns(pl.when(moved).then(pl.col("odds") + 0.05).otherwise(pl.col("odds")).alias("odds"))


def batch_of(run_id: int, at: datetime, prices: pl.DataFrame, batch_no: int = 1) -> BatchWrite:
    sr_ids = prices["sr_id"].unique(maintain_order=True).to_list()
    return BatchWrite(
        run_id=run_id, batch_no=batch_no, observed_at=at,
        events=[EventRow(s, at + timedelta(days=2), "England", "Premier League", f"Home {s}", f"Away {s}")
                for s in sr_ids],
        book_events=[BookEventRow(b, f"{b}-{s}", s) for s in sr_ids for b in BOOKS],
        prices=prices,
        scraped=[(s, b) for s in sr_ids for b in BOOKS],
        statuses=[ScrapeStatusRow(s, BOOKS, BOOKS, (), {}, 400, {b: f"{b}-{s}" for b in BOOKS}) for s in sr_ids],
        unmapped=pl.DataFrame([("sportybet", "900069", "Exotic", "UNKNOWN_MARKET", "", 3)],
                              schema=UNMAPPED_SCHEMA, orient="row"),
    )


RAW_TABLE = ("CREATE TABLE IF NOT EXISTS prices (sr_id VARCHAR, bookmaker VARCHAR, market VARCHAR, line DOUBLE, "
             "outcome VARCHAR, odds DOUBLE, available BOOLEAN)")


def raw_insert(path: Path, prices: pl.DataFrame) -> tuple[float, float]:
    """(whole unit of work, the INSERT alone) in seconds. The unit: open the file with the store's
    write settings, create the table if missing, insert the Arrow frame, commit, close — the
    commit/close includes the checkpoint DuckDB does then, as the store's does."""
    started = time.perf_counter()
    con = duckdb.connect(str(path), config=dict(WRITE_CONFIG))
    con.execute(RAW_TABLE)
    con.begin()
    con.register("frame", prices.to_arrow())
    t0 = time.perf_counter()
    con.execute("INSERT INTO prices SELECT * FROM frame")
    insert = time.perf_counter() - t0
    con.commit()
    con.close()
    return time.perf_counter() - started, insert


def raw_copy(url: str, prices: pl.DataFrame) -> tuple[float, float]:
    """``raw_insert`` on PostgreSQL: connect, create the table if missing, ``COPY`` the frame in
    as CSV, commit, close."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("+psycopg", "")) as con:
        con.execute(RAW_TABLE.replace("prices", "raw_prices").replace("VARCHAR", "TEXT").replace(
            "DOUBLE", "DOUBLE PRECISION"))
        t0 = time.perf_counter()
        with con.cursor().copy("COPY raw_prices FROM STDIN (FORMAT csv)") as copy:
            copy.write(prices.write_csv(include_header=False).encode())
        insert = time.perf_counter() - t0
    return time.perf_counter() - started, insert


def open_store(target: str, tmp: str) -> Store:
    """The benchmark's store: a DuckDB file, or a PostgreSQL URL (side files in ``tmp``)."""
    return Store(target, local_dir=tmp) if "://" in target else Store(target)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


# --- processes for the reader-under-writer phase ---------------------------------------------


def writer_process(path: str, events: int, per_book: int, stop: mp.Event, out: mp.Queue) -> None:
    store, rng, keys = open_store(path, tempfile.gettempdir()), np.random.default_rng(7), price_keys(per_book)
    run_id = store.start_run("benchmark-writer", list(BOOKS))
    frames = [price_frame(i, EVENTS_PER_BATCH, keys, rng) for i in range(0, events, EVENTS_PER_BATCH)]
    at, n = datetime.now(UTC), 0
    while not stop.is_set():
        i = n % len(frames)
        frames[i] = with_changes(frames[i], 0.05, rng)
        store.store_batch(batch_of(run_id, at + timedelta(seconds=n), frames[i], n + 1))
        n += 1
    store.finish_run(run_id, "COMPLETED", {})
    out.put(n)


def reader_process(path: str, events: int, seconds: float, out: mp.Queue) -> None:
    store, rng = open_store(path, tempfile.gettempdir()), np.random.default_rng(11)
    lat: dict[str, list[float]] = {"current_prices": [], "runs": []}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = sr_id(int(rng.integers(events)))
        lat["current_prices"].append(timed(lambda: store.current_prices(sr_ids=[event])))
        lat["runs"].append(timed(lambda: store.runs()))
    out.put(lat)


def read_latencies(path: str, events: int, per_book: int, seconds: float, with_writer: bool) -> tuple[dict, int]:
    ctx = mp.get_context("spawn")
    out, stop = ctx.Queue(), ctx.Event()
    writer = ctx.Process(target=writer_process, args=(path, events, per_book, stop, out)) if with_writer else None
    if writer:
        writer.start()
        time.sleep(3.0)  # let it import and get going
    reader = ctx.Process(target=reader_process, args=(path, events, seconds, out))
    reader.start()
    lat = out.get(timeout=seconds + 120)
    reader.join()
    batches = 0
    if writer:
        stop.set()
        batches = out.get(timeout=120)
        writer.join()
    return lat, batches


# --- history layout ------------------------------------------------------------------------


#: The synthetic history's rows, in cycle order (``{events}``, ``{per_cycle}``, ``{rows}``).
_SYNTHETIC = {
    "duckdb": """
        SELECT (60000000 + ((i % {events}) * 7919) % 999983)::VARCHAR AS sr_id,
               ['betpawa','sportybet','bet9ja'][1 + i % 3] AS bookmaker, 'over_under_ft' AS market,
               2.5 AS line, CASE WHEN i % 2 = 0 THEN 'over' ELSE 'under' END AS outcome,
               round(1.5 + (i % 97) / 100, 2) AS odds, true AS available,
               now()::TIMESTAMP - INTERVAL 13 DAY + to_seconds((i // {per_cycle}) * 300) AS observed_at,
               0 AS run_id
        FROM range({rows}) t(i)""",
    "postgres": """
        SELECT (60000000 + ((i % {events}) * 7919) % 999983)::TEXT AS sr_id,
               (ARRAY['betpawa','sportybet','bet9ja'])[1 + i % 3] AS bookmaker, 'over_under_ft' AS market,
               2.5::FLOAT8 AS line, CASE WHEN i % 2 = 0 THEN 'over' ELSE 'under' END AS outcome,
               round(1.5 + (i % 97) / 100.0, 2)::FLOAT8 AS odds, true AS available,
               LOCALTIMESTAMP - INTERVAL '13 days' + (i / {per_cycle}) * INTERVAL '300 seconds' AS observed_at,
               0::BIGINT AS run_id
        FROM generate_series(0, {rows} - 1) AS t(i)""",
}


def history_lookup(store: Store, rows: int, events: int) -> dict[str, float]:
    """Append ``rows`` synthetic history rows in cycle order, then time one event's history
    before and after ``cleanup`` re-sorts the table."""
    per_cycle = events * 3 * 8  # 5% of ~150 prices per book change per cycle
    synthetic = _SYNTHETIC["postgres" if store.postgres else "duckdb"]
    with store._db.write() as conn:  # bulk synthetic fill; the benchmark measures the read side
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "CREATE TEMP TABLE _synthetic AS " + synthetic.format(events=events, per_cycle=per_cycle, rows=rows))
        append_history(conn, "_synthetic")
    ids = [sr_id(n) for n in range(0, events, max(1, events // 25))]

    def lookups() -> list[float]:
        return [timed(lambda: store.odds_history(s)) for s in ids]

    before = lookups()
    cluster_s = timed(lambda: store.cleanup(history_days=14, run_days=30, cluster=True))
    after = lookups()
    return {"history_rows": store.table_counts()["odds_history"], "history_unsorted_p50_ms": pct(before, 50),
            "history_sorted_p50_ms": pct(after, 50), "history_sorted_p95_ms": pct(after, 95),
            "history_cluster_s": cluster_s}


def write_phase(store: Store, run_id: int, tmp: Path, args: argparse.Namespace, keys: list[tuple],
                rng: np.random.Generator) -> dict[str, float]:
    """Raw unit of work, store_batch of new prices, store_batch with changes: interleaved.

    Rates are throughput — rows over the *total* time of all rounds — not medians: a DuckDB
    checkpoint after an append costs 6 ms or 100 ms depending on where the table's last row
    group stands, in a cycle of about five batches, so a median of a few rounds can land on
    either side. Use enough rounds to cover whole cycles (the default covers two)."""
    raw_unit, raw_only, new_s, changed_s, changed = [], [], [], [], []
    now = datetime.now(UTC)
    rows = 0
    for r in range(args.rounds):
        fresh = price_frame(args.preload_events + r * EVENTS_PER_BATCH, EVENTS_PER_BATCH, keys, rng)
        rows = fresh.height
        unit, only = raw_copy(args.database_url, fresh) if args.database_url else raw_insert(tmp / "raw.duckdb", fresh)
        raw_unit.append(unit)
        raw_only.append(only)
        new_s.append(store.store_batch(batch_of(run_id, now, fresh)).seconds)
        moved_prices = with_changes(fresh, args.change_share, rng)
        moved = store.store_batch(batch_of(run_id, now + timedelta(minutes=5), moved_prices))
        changed_s.append(moved.seconds)
        changed.append(moved.changed)
    n = args.rounds
    raw_rps, new_rps, steady_rps = rows * n / sum(raw_unit), rows * n / sum(new_s), rows * n / sum(changed_s)
    store_rps = 2 * rows * n / (sum(new_s) + sum(changed_s))
    by_medians = 2 * statistics.median(raw_unit) / (statistics.median(new_s) + statistics.median(changed_s))

    def ms(xs: list[float]) -> str:
        mean, p50, top = (1000 * f(xs) for f in (statistics.mean, statistics.median, max))
        return f"mean {mean:.0f} ms, p50 {p50:.0f}, max {top:.0f}"

    print(f"batch: {EVENTS_PER_BATCH} events × {len(BOOKS)} books × {len(keys)} prices = {rows:,} rows; "
          f"{statistics.mean(changed):.0f} changed in the second pass; {n} rounds; rates = rows ÷ total time")
    raw = ("connect, CREATE TABLE IF NOT EXISTS, COPY the frame as CSV into a plain table, commit, close"
           if args.database_url else
           f"open with the store's write settings {WRITE_CONFIG}, CREATE TABLE IF NOT EXISTS, INSERT the Arrow "
           f"frame into a plain table of a file holding only it, commit, close incl. checkpoint")
    print(f"raw unit of work ({raw}): {ms(raw_unit)} = {raw_rps:,.0f} rows/s  "
          f"(INSERT alone {rows * n / sum(raw_only):,.0f} rows/s)")
    print(f"store_batch new prices:  {ms(new_s)} = {new_rps:,.0f} rows/s")
    print(f"store_batch {args.change_share:.0%} changed: {ms(changed_s)} = {steady_rps:,.0f} rows/s")
    print(f"store ÷ raw: {store_rps / raw_rps:.2f} (both passes), {steady_rps / raw_rps:.2f} (steady state); "
          f"by medians {by_medians:.2f}")
    return {"store_rows_per_s": round(store_rps), "raw_rows_per_s": round(raw_rps),
            "ratio": round(store_rps / raw_rps, 3),
            "store_new_rows_per_s": round(new_rps), "store_changed_rows_per_s": round(steady_rps),
            "ratio_steady_state": round(steady_rps / raw_rps, 3),
            "ratio_by_medians": round(by_medians, 3),
            "raw_insert_only_rows_per_s": round(rows * n / sum(raw_only)), "batch_rows": rows}


def read_phase(path: Path | str, args: argparse.Namespace) -> dict[str, float]:
    sizes = (str(path), args.preload_events, args.prices_per_book)
    idle, _ = read_latencies(*sizes, min(5.0, args.reader_seconds), False)
    busy, batches = read_latencies(*sizes, args.reader_seconds, True)
    both_idle = idle["current_prices"] + idle["runs"]
    both_busy = busy["current_prices"] + busy["runs"]
    print(f"readers alone:       p50 {pct(both_idle, 50):.1f} ms  p95 {pct(both_idle, 95):.1f} ms")
    print(f"readers with writer: p50 {pct(both_busy, 50):.1f} ms  p95 {pct(both_busy, 95):.1f} ms  "
          f"(current_prices p95 {pct(busy['current_prices'], 95):.1f}, runs p95 {pct(busy['runs'], 95):.1f}; "
          f"writer stored {batches} batches meanwhile)")
    return {"reader_p50_ms": round(pct(both_busy, 50), 2), "reader_p95_ms": round(pct(both_busy, 95), 2),
            "reader_idle_p50_ms": round(pct(both_idle, 50), 2), "reader_idle_p95_ms": round(pct(both_idle, 95), 2),
            "writer_batches_during_reads": batches}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preload-events", type=int, default=1500)
    ap.add_argument("--prices-per-book", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--change-share", type=float, default=0.05)
    ap.add_argument("--reader-seconds", type=float, default=15.0)
    ap.add_argument("--history-rows", type=int, default=10_000_000)
    ap.add_argument("--database-url", help="benchmark a PostgreSQL store (an empty database) instead of DuckDB")
    args = ap.parse_args()
    rng, keys = np.random.default_rng(1), price_keys(args.prices_per_book)

    with tempfile.TemporaryDirectory() as tmp:
        path: Path | str = args.database_url or Path(tmp) / "bench.duckdb"
        store = open_store(str(path), tmp)
        run_id = store.start_run("benchmark", list(BOOKS))
        started, now = time.perf_counter(), datetime.now(UTC)
        for n, first in enumerate(range(0, args.preload_events, EVENTS_PER_BATCH)):
            store.store_batch(batch_of(run_id, now, price_frame(first, EVENTS_PER_BATCH, keys, rng), n + 1))
        current_rows = store.table_counts()["odds_current"]
        print(f"preloaded {args.preload_events} events, {current_rows:,} current prices "
              f"in {time.perf_counter() - started:.1f}s")

        result = {**write_phase(store, run_id, Path(tmp), args, keys, rng), "current_rows": current_rows}
        result |= read_phase(path, args)
        result["backend"] = "postgres" if store.postgres else "duckdb"
        if args.history_rows:
            history = history_lookup(store, args.history_rows, args.preload_events)
            print(f"one event's history out of {history['history_rows']:,} rows: p50 "
                  f"{history['history_unsorted_p50_ms']:.1f} ms unsorted → {history['history_sorted_p50_ms']:.1f} ms "
                  f"after cleanup's re-sort ({history['history_cluster_s']:.1f} s)")
            result |= {k: round(v, 2) if isinstance(v, float) else v for k, v in history.items()}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
