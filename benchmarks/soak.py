"""Soak and chaos: back-to-back cycles under faults, ten readers, and the scheduler SIGKILLed at random.

The simulator serves every book with faults (5xx, 429, timeouts, cut and broken bodies, slow
answers) and its prices drift an epoch every ``--drift-s`` seconds (moved here, so the epoch of
every moment is known). ``oddsdesk scheduler`` runs full cycles back to back (interval and mode
set through the settings table, as the app would). Reader processes run the app's page queries
(``engine/store/views.py``: comparison grid, event detail, runs, coverage, the SQL notebook)
once a second each. At ``--kills`` random moments the scheduler is SIGKILLed and started again.

What is measured:

* cycles completed, runs interrupted by the kills;
* reader errors (target 0): any exception a page query raised;
* committed batches that vanished (target 0): a batch a reader once saw committed
  (its BATCH_COMPLETE row, written in the batch's own transaction) must still be there at the end;
* prices lost (target 0): for every event × book a committed batch reports scraped, the store as
  of that batch (the latest ``odds_history`` row of each price up to the batch) must hold exactly
  the simulator's quotes at the epoch the fetch saw (any epoch in force between the run's start
  and the batch's commit) — a price missing or different is lost;
* scheduler RSS (after its first cycle → at the end, and the peak), database growth.

``--database-url postgresql+psycopg://…`` runs the same on a PostgreSQL database (an empty one:
the store's tables are created in it); the loss check then copies the tables it needs out of
PostgreSQL and runs the same SQL on them in an in-memory DuckDB.

On demand, not in CI's pass/fail (a short version is tests/test_soak_short.py, on both stores).
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

from engine.config import BOOKS  # noqa: E402
from engine.simulator.process import SimProcess, start_simulator  # noqa: E402
from engine.simulator.world import World, build_world  # noqa: E402
from engine.store import Store  # noqa: E402

FAULTS = ("all:latency=40,jitter=30,429=0.02,500=0.02,503=0.02,timeout=0.005,truncated=0.01,malformed=0.01,"
          "hang=4,retry_after=1")
PAGES = ("comparison", "event", "runs", "coverage", "notebook")


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- readers: separate processes, like the app's sessions --------------------------------------


def visit(store: Store, page: str, rng: random.Random) -> None:
    """The queries one page of the app runs when it renders."""
    from engine.markets.catalogue import load_catalogue
    from engine.store import views

    if page == "comparison":
        views.market_choices(views.market_lines(store))
        views.comparison(store, "1x2_ft", None)
    elif page == "event":
        events = views.events(store)
        if events.height:
            sr_id = events["sr_id"][rng.randrange(events.height)]
            views.event_info(store, sr_id)
            views.event_markets(views.event_prices(store, sr_id))
            history = views.odds_history(store, sr_id, "1x2_ft", None)
            views.odds_series(history, load_catalogue().markets["1x2_ft"], views.utcnow())
    elif page == "runs":
        runs = views.runs(store, 20)
        if runs.height:
            run_id = int(runs["id"][0])
            views.run_detail(store, run_id)
            views.run_progress(store, run_id)
            views.event_status(store, run_id)
        views.scheduler_status(store)
        views.freshness(store)
    elif page == "coverage":
        views.coverage_summary(views.coverage_events(store))
        views.unmapped(store)
    else:
        views.run_sql(store, "SELECT bookmaker, count(*) AS prices FROM odds_current GROUP BY bookmaker")


def reader(target: str, local_dir: str, index: int, stop: Any, results: Any, period_s: float = 1.0) -> None:
    """One page visit a second until ``stop``; then its counts and the first errors to ``results``."""
    store = Store(target, local_dir)
    rng = random.Random(index)
    visits = errors = 0
    samples: list[str] = []
    next_at = time.monotonic()
    while not stop.is_set():
        page = PAGES[(index + visits + errors) % len(PAGES)]
        try:
            visit(store, page, rng)
            visits += 1
        except Exception as exc:  # what the soak counts: any error a page would show
            errors += 1
            if len(samples) < 5:
                samples.append(f"{page}: {type(exc).__name__}: {exc}"[:300])
        next_at += period_s
        stop.wait(max(0.0, next_at - time.monotonic()))
    results.put({"reader": index, "visits": visits, "errors": errors, "samples": samples})


def _report(results: Any) -> dict[str, Any]:
    try:
        return results.get(timeout=120)
    except queue.Empty:
        return {"visits": 0, "errors": 1, "samples": ["a reader process died without reporting"]}


# --- the scheduler process -----------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Scheduler:
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    lives: list[dict[str, Any]] = field(default_factory=list)  # per process: pid, rss after first cycle, last rss

    def start(self, store: Store) -> None:
        before = store.query("SELECT count(*) FILTER (WHERE status IN ('COMPLETED', 'PARTIAL')) AS cycles, "
                             "coalesce(max(id), 0) AS last_run FROM scrape_runs").row(0, named=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=self.env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.lives.append({"pid": self.proc.pid, "cycles_before": before["cycles"], "run_before": before["last_run"],
                           "rss_first_mb": None, "rss_last_mb": None, "rss_peak_mb": 0.0})

    def running_run(self, store: Store) -> bool:
        """Whether this process has a run RUNNING (a run left RUNNING by a killed one does not count)."""
        latest = store.runs(limit=1)
        return bool(latest.height and latest["status"][0] == "RUNNING"
                    and latest["id"][0] > self.lives[-1]["run_before"])

    def sample(self, cycles: int) -> None:
        """RSS now; "first" is the RSS once this process has finished a cycle (warmed up)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        rss = rss_mb(self.proc.pid)
        if rss is None:
            return
        life = self.lives[-1]
        if cycles > life["cycles_before"] and life["rss_first_mb"] is None:
            life["rss_first_mb"] = rss
        life["rss_last_mb"] = rss
        life["rss_peak_mb"] = max(life["rss_peak_mb"], rss)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(180)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            return -9


# --- ground truth ----------------------------------------------------------------------------


@dataclass
class Epochs:
    """Which simulator epoch was in force when: spans overlap at each change (the change happens
    somewhere inside the HTTP call that makes it)."""

    spans: list[list[Any]] = field(default_factory=list)  # [epoch, from, to | None]

    def begin(self, sim: SimProcess) -> None:
        self.spans.append([sim.state()["epoch"], utcnow() - timedelta(seconds=1), None])

    def advance(self, sim: SimProcess) -> None:
        before = utcnow()
        epoch = sim.advance(1)["epoch"]
        self.spans[-1][2] = utcnow()
        self.spans.append([epoch, before, None])

    def frame(self) -> pl.DataFrame:
        end = utcnow() + timedelta(days=1)
        return pl.DataFrame({
            "epoch": [s[0] for s in self.spans],
            "valid_from": [s[1].replace(tzinfo=None) for s in self.spans],
            "valid_to": [(s[2] or end).replace(tzinfo=None) for s in self.spans],
        })


def expected_quotes(world: World, epochs: list[int]) -> pl.DataFrame:
    rows: dict[str, list] = {k: [] for k in ("epoch", "sr_id", "bookmaker", "market", "line", "outcome", "odds",
                                             "available")}
    for epoch in epochs:
        for event in world.events:
            for book in event.books:
                for p in world.quotes(book, event.sr_id, epoch):
                    for key, value in zip(rows, (epoch, event.sr_id, book, p.market, p.line, p.outcome, p.odds,
                                                 p.available)):
                        rows[key].append(value)
    return pl.DataFrame(rows, schema={"epoch": pl.Int64, "sr_id": pl.String, "bookmaker": pl.String,
                                      "market": pl.String, "line": pl.Float64, "outcome": pl.String,
                                      "odds": pl.Float64, "available": pl.Boolean})


_LOST_SQL = """
WITH scraped AS (
    SELECT s.run_id, s.sr_id, s.observed_at, r.started_at,
           unnest(from_json(s.books_scraped, '["VARCHAR"]')) AS book
    FROM event_scrape_status s JOIN scrape_runs r ON r.id = s.run_id
),
candidates AS (
    SELECT s.run_id, s.sr_id, s.book, e.epoch
    FROM scraped s JOIN read_parquet({epochs}) e ON e.valid_from <= s.observed_at AND e.valid_to >= s.started_at
),
as_of AS (
    SELECT s.run_id, s.sr_id, s.book, h.market, h.line, h.outcome,
           arg_max(h.odds, h.observed_at) AS odds, arg_max(h.available, h.observed_at) AS available
    FROM scraped s JOIN odds_history h
      ON h.sr_id = s.sr_id AND h.bookmaker = s.book AND h.observed_at <= s.observed_at
    GROUP BY ALL
),
per_epoch AS (
    SELECT c.run_id, c.sr_id, c.book, c.epoch, count(*) AS expected,
           count(*) FILTER (WHERE a.odds IS NULL OR a.odds <> x.odds OR a.available <> x.available) AS lost
    FROM candidates c
    JOIN read_parquet({quotes}) x ON x.epoch = c.epoch AND x.sr_id = c.sr_id AND x.bookmaker = c.book
    LEFT JOIN as_of a ON a.run_id = c.run_id AND a.sr_id = c.sr_id AND a.book = c.book AND a.market = x.market
                    AND a.line IS NOT DISTINCT FROM x.line AND a.outcome = x.outcome
    GROUP BY ALL
),
best AS (SELECT run_id, sr_id, book, min(lost) AS lost, max(expected) AS expected FROM per_epoch GROUP BY ALL)
SELECT (SELECT count(*) FROM scraped) AS scraped_pairs, count(*) AS checked_pairs,
       coalesce(sum(expected), 0) AS prices_checked, coalesce(sum(lost), 0) AS prices_lost,
       count(*) FILTER (WHERE lost > 0) AS pairs_with_loss
FROM best
"""


def lost_prices(store: Store, world: World, epochs: Epochs, workdir: Path) -> dict[str, int]:
    """Committed scrapes checked against the simulator (see the module docstring)."""
    quotes_path, epochs_path = workdir / "expected.parquet", workdir / "epochs.parquet"
    expected_quotes(world, sorted({s[0] for s in epochs.spans})).write_parquet(quotes_path)
    epochs.frame().write_parquet(epochs_path)
    sql = _LOST_SQL.format(epochs=f"'{epochs_path}'", quotes=f"'{quotes_path}'")
    if not store.postgres:
        return {k: int(v or 0) for k, v in store.query(sql).row(0, named=True).items()}
    with duckdb.connect() as local:  # read_parquet, from_json and unnest are DuckDB's: copy the tables over
        for table in ("event_scrape_status", "scrape_runs", "odds_history"):
            local.register(table, store.query(f"SELECT * FROM {table}").to_arrow())
        row = local.sql(sql).pl().row(0, named=True)
    return {k: int(v or 0) for k, v in row.items()}


def cycles_done(store: Store) -> int:
    return int(store.query("SELECT count(*) FROM scrape_runs WHERE status IN ('COMPLETED', 'PARTIAL')").item())


def committed_batches(store: Store) -> set[tuple[int, int]]:
    frame = store.query("SELECT run_id, seq FROM run_progress WHERE kind = 'BATCH_COMPLETE'")
    return set(frame.iter_rows())


# --- the soak ----------------------------------------------------------------------------------


def scheduler_env(sim: SimProcess, db: Path, database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    env.update({f"ODDSDESK_{b.upper()}_URL": sim.urls[b] for b in BOOKS})
    env.update(ODDSDESK_DB_PATH=str(db), PYTHONPATH=str(ROOT), ODDSDESK_REQUEST_TIMEOUT_S="3",
               ODDSDESK_BACKOFF_S="0.2", ODDSDESK_BET9JA_DELAY_MS="0")
    if database_url:
        env["ODDSDESK_DATABASE_URL"] = database_url
    return env


def run_soak(minutes: float = 30.0, kills: int = 6, readers: int = 10, events: int = 200, seed: int = 1,
             faults: str = FAULTS, drift_s: float = 60.0, workdir: Path | None = None,
             say: Any = print, database_url: str | None = None) -> dict[str, Any]:
    """The whole soak; returns the figures (see the module docstring). ``database_url``: on that
    PostgreSQL database instead of a DuckDB file in ``workdir``."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="oddsdesk-soak-"))
    db = workdir / "soak.duckdb"
    target = database_url or str(db)
    rng = random.Random(seed)
    duration = minutes * 60.0
    kill_at = sorted(rng.uniform(0.1, 0.9) * duration for _ in range(kills))
    ctx = multiprocessing.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    epochs = Epochs()
    seen: set[tuple[int, int]] = set()
    kills_done: list[dict[str, Any]] = []

    with start_simulator(seed=seed, events=events, faults=faults) as sim:
        state = sim.state()
        world = build_world(seed=state["seed"], events=state["events"], anchor=datetime.fromisoformat(state["anchor"]))
        store = Store(target, workdir)
        store.put_settings({"scrape_interval_min": 0.1, "refresh_mode": "full"})  # back to back, as the app sets it
        epochs.begin(sim)
        scheduler = Scheduler(scheduler_env(sim, db, database_url), workdir / "scheduler.log")
        scheduler.start(store)
        pool = [ctx.Process(target=reader, args=(target, str(workdir), i, stop, results), daemon=True) for i in range(readers)]
        for p in pool:
            p.start()
        say(f"soak: {minutes:g} min, {events} events, {readers} readers, {kills} kills, faults {faults!r}; "
            f"store {store.label}; in {workdir}")
        started = time.monotonic()
        next_drift = drift_s
        db_first = None
        try:
            while (elapsed := time.monotonic() - started) < duration:
                if elapsed >= next_drift:
                    epochs.advance(sim)
                    next_drift += drift_s
                if kill_at and elapsed >= kill_at[0]:
                    kill_at.pop(0)
                    mid_cycle = scheduler.running_run(store)
                    scheduler.kill()
                    kills_done.append({"at_s": round(elapsed, 1), "mid_cycle": mid_cycle})
                    say(f"  {elapsed:6.0f}s  SIGKILL scheduler (pid {scheduler.lives[-1]['pid']}, "
                        f"{'mid-cycle' if mid_cycle else 'between cycles'}); restarting")
                    time.sleep(rng.uniform(0.0, 2.0))
                    scheduler.start(store)
                seen |= committed_batches(store)
                done = cycles_done(store)
                if done and db_first is None:
                    db_first = store.db_bytes()
                scheduler.sample(done)
                time.sleep(2.0)
        finally:
            stop.set()
            reports = [_report(results) for _ in pool]
            for p in pool:
                p.join(30)
            exit_code = scheduler.stop()

        seen |= committed_batches(store)
        final = committed_batches(store)
        runs = store.query("SELECT status, count(*) AS n FROM scrape_runs GROUP BY status")
        by_status = dict(runs.iter_rows())
        lost = lost_prices(store, world, epochs, workdir)
        lives = scheduler.lives
        first_rss = next((life["rss_first_mb"] for life in lives if life["rss_first_mb"]), None)
        result = {
            "minutes": minutes, "events": events, "readers": readers,
            "kills": len(kills_done), "kills_mid_cycle": sum(k["mid_cycle"] for k in kills_done),
            "cycles_completed": cycles_done(store),
            "runs_by_status": by_status,
            "reader_visits": sum(r["visits"] for r in reports),
            "reader_errors": sum(r["errors"] for r in reports),
            "reader_error_samples": [s for r in reports for s in r["samples"]][:10],
            "committed_batches": len(final), "committed_batches_vanished": len(seen - final),
            "prices_checked": lost["prices_checked"], "prices_lost": lost["prices_lost"],
            "scraped_pairs": lost["scraped_pairs"], "unchecked_pairs": lost["scraped_pairs"] - lost["checked_pairs"],
            "pairs_with_loss": lost["pairs_with_loss"],
            "scheduler_rss_start_mb": round(first_rss or 0.0, 1),
            "scheduler_rss_end_mb": round(lives[-1]["rss_last_mb"] or 0.0, 1),
            "scheduler_rss_peak_mb": round(max(life["rss_peak_mb"] for life in lives), 1),
            "scheduler_lives": [{k: (round(v, 1) if isinstance(v, float) else v) for k, v in life.items()}
                                for life in lives],
            "db_bytes_start": db_first or 0, "db_bytes_end": store.db_bytes(),
            "epochs": len(epochs.spans), "scheduler_exit": exit_code, "workdir": str(workdir),
            "store": "postgres" if store.postgres else "duckdb",
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--readers", type=int, default=10)
    ap.add_argument("--events", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drift-s", type=float, default=60.0, help="the simulator's prices move every N seconds")
    ap.add_argument("--faults", default=FAULTS, help="engine/simulator/faults.py grammar")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the database and logs here")
    ap.add_argument("--database-url", help="soak a PostgreSQL store (an empty database) instead of DuckDB")
    args = ap.parse_args()
    r = run_soak(args.minutes, args.kills, args.readers, args.events, args.seed, args.faults, args.drift_s,
                 args.workdir, database_url=args.database_url)
    mb = 1024 * 1024
    print(f"cycles completed       {r['cycles_completed']}  (runs by status {r['runs_by_status']})")
    print(f"kills                  {r['kills']} ({r['kills_mid_cycle']} mid-cycle)")
    print(f"reader errors          {r['reader_errors']} of {r['reader_visits']} page visits (target 0)"
          + "".join(f"\n    {s}" for s in r["reader_error_samples"]))
    print(f"committed batches      {r['committed_batches']}, vanished {r['committed_batches_vanished']} (target 0)")
    print(f"prices lost            {r['prices_lost']} of {r['prices_checked']} checked in "
          f"{r['scraped_pairs']} committed event×book scrapes (target 0; unchecked {r['unchecked_pairs']})")
    print(f"scheduler RSS          {r['scheduler_rss_start_mb']} → {r['scheduler_rss_end_mb']} MB "
          f"(peak {r['scheduler_rss_peak_mb']} MB over {len(r['scheduler_lives'])} processes)"
          + "".join(f"\n    pid {life['pid']}: {life['rss_first_mb'] or '(no cycle finished)'} → "
                    f"{life['rss_last_mb']} MB" for life in r["scheduler_lives"]))
    print(f"database               {r['db_bytes_start'] / mb:.1f} → {r['db_bytes_end'] / mb:.1f} MB")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
