"""The app's read latency on a store holding 14 days of history, and what that store weighs.

1. History: the simulator's world (``build_world``, ``--events`` events) gives every price's key
   and starting odds, and each market instance's drift schedule (re-quoted every ``period``
   5-minute epochs at its own phase — about 5% of prices per cycle). Every re-quote of the
   last ``--days`` days becomes one history row per outcome, its odds drawn within the
   instance's swing, a share suspended as the book does. Generated with numpy per
   ``--chunk-events`` events, in sr_id order, and written with ``Store.import_history`` — the
   way a fortnight of scrapes would leave the table after ``cleanup`` re-sorted it.
2. Current prices: one ``store_batch`` per 50 events with the world's quotes at the last epoch,
   as a scrape cycle leaves them (its rows are the history table's unsorted tail).
3. Reads, each from a fresh read-only connection as the app does: ``views.comparison`` for
   1X2 and O/U 2.5 (alternating), and the event page — ``views.event_prices`` plus
   ``views.odds_history`` of one of its markets — for random events.

The last line is JSON. ``--days 1`` runs in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from engine.config import BOOKS  # noqa: E402
from engine.simulator.world import World, build_world  # noqa: E402
from engine.store import Store, views  # noqa: E402
from engine.store.types import (  # noqa: E402
    PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, BookEventRow, EventRow, ScrapeStatusRow,
)

EPOCH = timedelta(minutes=5)
MIN_ODDS = 1.01


def outcome_table(world: World) -> pl.DataFrame:
    """One row per quoted price (event, book, market, line, outcome) with its base odds and its
    instance's drift schedule, in the order odds_history is clustered in."""
    cols: dict[str, list] = {k: [] for k in ("sr_id", "bookmaker", "market", "line", "outcome", "base", "period",
                                             "phase", "swing", "cap", "suspend")}
    for event in world.events:
        for book in event.books:
            bq = world._book_quotes(book, event.sr_id)  # the drift schedule has no public accessor
            for i in range(len(bq)):
                for j, outcome in enumerate(bq.outcomes[i]):
                    cols["sr_id"].append(event.sr_id)
                    cols["bookmaker"].append(book)
                    cols["market"].append(bq.markets[i])
                    cols["line"].append(bq.lines[i])
                    cols["outcome"].append(outcome)
                    cols["base"].append(bq.base[bq.starts[i] + j])
                    cols["period"].append(bq.periods[i])
                    cols["phase"].append(bq.phases[i])
                    cols["swing"].append(bq.swings[i])
                    cols["cap"].append(bq.max_odds)
                    cols["suspend"].append(bq.suspend / 65536)
    table = pl.DataFrame(cols, schema_overrides={"line": pl.Float64})
    return table.sort(["sr_id", "bookmaker", "market", "line", "outcome"], nulls_last=True)


def history_chunk(prices: pl.DataFrame, cycles: int, start: datetime, rng: np.random.Generator) -> pl.DataFrame:
    """Every history row of ``prices`` over ``cycles`` epochs from ``start``: the first quote,
    then one row per re-quote of its instance, each price's rows in time order."""
    period = prices["period"].to_numpy().astype(np.int64)
    phase = prices["phase"].to_numpy().astype(np.int64)
    first = (period - phase % period) % period
    first[first == 0] = period[first == 0]
    changes = np.where(first < cycles, (cycles - 1 - first) // period + 1, 0)
    per_price = changes + 1
    owner = np.repeat(np.arange(prices.height), per_price)
    starts = np.cumsum(per_price) - per_price
    k = np.arange(owner.size) - np.repeat(starts, per_price)
    epoch = np.where(k == 0, 0, first[owner] + (k - 1) * period[owner])

    base = prices["base"].to_numpy()[owner]
    swing = prices["swing"].to_numpy()[owner]
    drawn = np.round(base * (1.0 + swing * (2.0 * rng.random(owner.size) - 1.0)), 2)
    odds = np.where(k == 0, base, np.clip(drawn, MIN_ODDS, prices["cap"].to_numpy()[owner]))
    available = rng.random(owner.size) >= prices["suspend"].to_numpy()[owner]
    keys = prices.select("sr_id", "bookmaker", "market", "line", "outcome")[owner]
    return keys.with_columns(
        odds=pl.Series(odds), available=pl.Series(available),
        observed_at=pl.lit(start) + pl.duration(minutes=pl.Series(epoch * 5)),
        run_id=pl.Series(epoch + 1),
    )


def fill_history(store: Store, table: pl.DataFrame, cycles: int, start: datetime, chunk_events: int,
                 rng: np.random.Generator) -> tuple[int, float]:
    started, rows = time.perf_counter(), 0
    sr_ids = table["sr_id"].unique(maintain_order=True).to_list()
    for n in range(0, len(sr_ids), chunk_events):
        part = table.filter(pl.col("sr_id").is_in(sr_ids[n:n + chunk_events]))
        rows += store.import_history(history_chunk(part, cycles, start, rng))
        if n // chunk_events % 10 == 0:
            print(f"  {min(n + chunk_events, len(sr_ids))}/{len(sr_ids)} events, {rows:,} rows, "
                  f"{time.perf_counter() - started:.0f}s", flush=True)
    return rows, time.perf_counter() - started


def store_current(store: Store, world: World, epoch: int, at: datetime) -> None:
    """The world's quotes at ``epoch`` stored as one scrape cycle would (50 events a batch)."""
    run_id = store.start_run("benchmark", list(BOOKS))
    events = world.events
    batches = [events[i:i + 50] for i in range(0, len(events), 50)]
    for n, batch in enumerate(batches, start=1):
        rows = [(e.sr_id, b, p.market, p.line, p.outcome, p.odds, p.available)
                for e in batch for b in sorted(e.books) for p in world.quotes(b, e.sr_id, epoch)]
        store.store_batch(BatchWrite(
            run_id=run_id, batch_no=n, observed_at=at,
            events=[EventRow(e.sr_id, e.kickoff, e.tournament.country, e.tournament.name, e.home, e.away)
                    for e in batch],
            book_events=[BookEventRow(b, e.book_ids[b], e.sr_id) for e in batch for b in e.books],
            prices=pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row"),
            scraped=[(e.sr_id, b) for e in batch for b in e.books],
            statuses=[ScrapeStatusRow(e.sr_id, tuple(e.books), tuple(e.books), (), {}, 0) for e in batch],
            unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA), batches_total=len(batches),
        ))
    store.finish_run(run_id, "COMPLETED", {"events_scraped": len(events)})


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def read_latencies(store: Store, samples: int, rng: np.random.Generator) -> dict[str, list[float]]:
    comparisons = [("1x2_ft", None), ("over_under_ft", 2.5)]
    sr_ids = store.events()["sr_id"].to_list()
    views.comparison(store, "1x2_ft", None)  # the first read of a process pays its imports
    lat: dict[str, list[float]] = {"comparison": [], "event_detail": [], "event_prices": [], "odds_history": []}
    for n in range(samples):
        market, line = comparisons[n % 2]
        lat["comparison"].append(timed(lambda: views.comparison(store, market, line)))
        sr_id = sr_ids[int(rng.integers(len(sr_ids)))]
        t0 = time.perf_counter()
        prices = views.event_prices(store, sr_id)
        t1 = time.perf_counter()
        pick = prices.select("market", "line").unique().sort("market", "line").row(int(rng.integers(
            prices.select("market", "line").n_unique())))
        views.odds_history(store, sr_id, pick[0], pick[1])
        t2 = time.perf_counter()
        lat["event_prices"].append((t1 - t0) * 1000)
        lat["odds_history"].append((t2 - t1) * 1000)
        lat["event_detail"].append((t2 - t0) * 1000)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, default=14.0)
    ap.add_argument("--events", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--chunk-events", type=int, default=20)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--db", type=Path, help="build the store here and keep it (default: a temporary file)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    cycles = max(1, round(args.days * 24 * 60 / 5))

    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "queries.duckdb"
        if path.exists():
            raise SystemExit(f"{path} exists; give a new path")
        store = Store(path)
        t0 = time.perf_counter()
        anchor = datetime.now(UTC).replace(second=0, microsecond=0)
        world = build_world(seed=args.seed, events=args.events, anchor=anchor)
        world.warm()
        table = outcome_table(world)
        print(f"world: {len(world.events)} events, {table.height:,} prices, "
              f"~{(1 / table['period']).sum():,.0f} re-quoted per 5-minute cycle; {time.perf_counter() - t0:.1f}s")
        start = anchor - cycles * EPOCH
        rows, import_s = fill_history(store, table, cycles, start, args.chunk_events, rng)
        print(f"history: {cycles} cycles ({args.days:g} days), {rows:,} rows imported in {import_s:.0f}s "
              f"({rows / import_s:,.0f} rows/s)")
        t1 = time.perf_counter()
        store_current(store, world, cycles, anchor)
        counts = store.table_counts()
        print(f"current prices: {counts['odds_current']:,} rows stored in {time.perf_counter() - t1:.1f}s; "
              f"odds_history {counts['odds_history']:,} rows; database {store.db_bytes() / 1e6:,.0f} MB")

        lat = read_latencies(store, args.samples, rng)
        for name, values in lat.items():
            print(f"{name:14s} p50 {pct(values, 50):7.1f} ms  p95 {pct(values, 95):7.1f} ms  max {max(values):7.1f} ms")
        result = {
            "comparison_p50_ms": pct(lat["comparison"], 50), "comparison_p95_ms": pct(lat["comparison"], 95),
            "event_detail_p50_ms": pct(lat["event_detail"], 50), "event_detail_p95_ms": pct(lat["event_detail"], 95),
            "event_prices_p95_ms": pct(lat["event_prices"], 95), "odds_history_p95_ms": pct(lat["odds_history"], 95),
            "db_bytes": store.db_bytes(), "history_rows": counts["odds_history"],
            "current_rows": counts["odds_current"],
            "events": len(world.events), "days": args.days, "import_rows_per_s": round(rows / import_s),
            "samples": args.samples, "total_s": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(result))


if __name__ == "__main__":
    main()
