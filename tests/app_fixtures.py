"""A seeded store for the app tests, built without mocks: a small simulator world's ground-truth
quotes stored through ``Store.store_batch`` exactly as the pipeline would store them.

Two runs: run 1 (epoch 0, PARTIAL: one event's Bet9ja fetch failed) and run 2 (epoch 1, the
world's drift, so some prices have history), plus a few unmapped markets.

Stores are a DuckDB file or a database on the test PostgreSQL server (``StoreTarget``); the
``seeded`` fixture gives each test module one of each, and the app under test is pointed at it
through the environment, as a deployment would point it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from conftest import StoreTarget
from engine.config import BOOKS
from engine.pipeline.summary import BookStats, RunSummary
from engine.simulator.world import World, build_world
from engine.store import Store
from engine.store.types import (
    PRICE_SCHEMA,
    UNMAPPED_SCHEMA,
    BatchWrite,
    BookEventRow,
    EventRow,
    ScrapeStatusRow,
)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 30


#: The two backends, as ``conftest.store_target`` names them.
BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def module_target(request: pytest.FixtureRequest, folder: Path, backend: str) -> StoreTarget:
    """A store for a module-scoped fixture: a DuckDB file in ``folder``, or a fresh database on
    the session's PostgreSQL server (side files in ``folder``)."""
    db_path = folder / "oddsdesk.duckdb"
    if backend == "duckdb":
        return StoreTarget(db_path)
    from tests.pg_server import fresh_database

    return StoreTarget(db_path, fresh_database(request.getfixturevalue("pg_admin_url")))


@dataclass
class Seeded:
    store: Store
    world: World
    target: StoreTarget
    runs: list[int]
    failed_sr_id: str  # its Bet9ja fetch failed in run 1
    failed_book: str

    @property
    def db_path(self) -> Path:
        return self.target.db_path


Where = StoreTarget | Path


def _target(where: Where) -> StoreTarget:
    return where if isinstance(where, StoreTarget) else StoreTarget(where)


def app(where: Where, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The real app (entry point + pages) pointed at the store (a DuckDB file's path, or a
    ``StoreTarget``) through the environment."""
    target = _target(where)
    monkeypatch.delenv("ODDSDESK_DATABASE_URL", raising=False)
    for name, value in target.env().items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def open_page(where: Where, monkeypatch: pytest.MonkeyPatch, page: str | None = None,
              query_params: dict[str, str] | None = None) -> AppTest:
    at = app(where, monkeypatch).run()
    if page:
        at.switch_page(page)
        if query_params:
            at.query_params.update(query_params)
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def later(at: AppTest) -> AppTest:
    """Rerun as a user would see it once the app's short read caches have expired."""
    st.cache_data.clear()
    return at.run()


def _prices(world: World, pairs: list[tuple[str, str]], epoch: int) -> pl.DataFrame:
    cols: dict[str, list] = {k: [] for k in PRICE_SCHEMA}
    for sr_id, book in pairs:
        for p in world.quotes(book, sr_id, epoch):
            cols["sr_id"].append(sr_id)
            cols["bookmaker"].append(book)
            cols["market"].append(p.market)
            cols["line"].append(p.line)
            cols["outcome"].append(p.outcome)
            cols["odds"].append(p.odds)
            cols["available"].append(p.available)
    return pl.DataFrame(cols, schema=PRICE_SCHEMA)


def _unmapped(run_no: int) -> pl.DataFrame:
    rows = [
        ("sportybet", "999", "Player to score first", "unknown_market", "desc=Player to score first", 3 * run_no),
        ("bet9ja", "S_FAKECS", "Fake correct score", "unknown_market", "key=S_FAKECS_1-0", 2),
        ("betpawa", "28000999", "Team to score in both halves", "unknown_market", "", 1),
    ]
    return pl.DataFrame(rows, schema=UNMAPPED_SCHEMA, orient="row")


def _run(store: Store, world: World, epoch: int, observed_at: datetime, failed: tuple[str, str] | None) -> int:
    run_id = store.start_run("schedule", list(BOOKS))
    summary = RunSummary(run_id=run_id, trigger="schedule", kind="full", started_at=observed_at - timedelta(seconds=42),
                         books={b: BookStats() for b in BOOKS})
    store.add_progress(run_id, "CYCLE_START", "full run started (schedule)")
    events, book_events, scraped, statuses = [], [], [], []
    for ev in world.events:
        ok, bad, errors = [], [], {}
        for book in sorted(ev.books):
            book_events.append(BookEventRow(book, ev.book_ids[book], ev.sr_id))
            stats = summary.books[book]
            stats.listed += 1
            stats.requested += 1
            if failed == (ev.sr_id, book):
                bad.append(book)
                errors[book] = "timeout: read timed out (after 3 attempts)"
                stats.failed += 1
                stats.note_error(f"{ev.sr_id}: {errors[book]}", "timeout")
                continue
            ok.append(book)
            stats.scraped += 1
            scraped.append((ev.sr_id, book))
        events.append(EventRow(ev.sr_id, ev.kickoff, ev.tournament.country, ev.tournament.name, ev.home, ev.away))
        statuses.append(ScrapeStatusRow(ev.sr_id, tuple(sorted(ev.books)), tuple(ok), tuple(bad), errors, 120,
                                        {b: ev.book_ids[b] for b in ev.books}))
        summary.events_total += 1
        summary.events_scraped += bool(ok)
        summary.events_failed += bool(bad)
    prices = _prices(world, scraped, epoch)
    for book in BOOKS:
        summary.books[book].prices = prices.filter(pl.col("bookmaker") == book).height
    store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=observed_at, events=events, book_events=book_events, prices=prices,
        scraped=scraped, statuses=statuses, unmapped=_unmapped(epoch + 1), batches_total=1,
    ))
    summary.batches_total = summary.batches_done = 1
    summary.status = "PARTIAL" if summary.events_failed else "COMPLETED"
    summary.finished_at = observed_at
    store.add_progress(run_id, "CYCLE_COMPLETE", f"{summary.status}: {summary.events_scraped} events")
    store.finish_run(run_id, summary.status, summary.as_json())
    return run_id


def seed_store(where: Where, seed: int = 11, events: int = 40) -> Seeded:
    target = _target(where)
    world = build_world(seed=seed, events=events)
    store = target.store()
    on_all = [e for e in world.events if set(e.books) == set(BOOKS)]
    failed = (on_all[0].sr_id, "bet9ja")
    now = datetime.now(timezone.utc)
    first = _run(store, world, 0, now - timedelta(minutes=20), failed)
    second = _run(store, world, 1, now - timedelta(minutes=5), None)
    return Seeded(store=store, world=world, target=target, runs=[first, second], failed_sr_id=failed[0],
                  failed_book=failed[1])


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One seeded store per backend shared by a test module (the app only reads it, except
    where noted)."""
    return seed_store(module_target(request, tmp_path_factory.mktemp("app"), request.param))


# --- alerts: a third scrape, with the alert thresholds, that moves, widens and pulls prices ---------


@dataclass
class Alerted:
    seeded: Seeded
    steam: str  # sr_id: SportyBet shortened its 1X2 home price by 20 %
    pulled: str  # sr_id: SportyBet and Bet9ja stopped offering BTTS, BetPawa still does


def seed_alerts(where: Where, events: int = 8) -> Alerted:
    """``seed_store``, then one more batch of two events (all books fetched whole) stored with the
    default ``AlertThresholds``, as a scrape that saw those changes would store it."""
    from engine.markets.alerts import AlertThresholds

    seeded = seed_store(where, events=events)
    world, store = seeded.world, seeded.store

    def quoted(sr_id: str, market: str) -> bool:
        return all(any(p.market == market and p.available for p in world.quotes(b, sr_id, 1)) for b in BOOKS)

    full = [e for e in world.events if set(e.books) == set(BOOKS) and e.sr_id != seeded.failed_sr_id]
    steam = next(e for e in full if quoted(e.sr_id, "1x2_ft"))
    pulled = next(e for e in full if e is not steam and quoted(e.sr_id, "btts_ft"))
    pairs = [(e.sr_id, b) for e in (steam, pulled) for b in BOOKS]
    prices = _prices(world, pairs, 1).filter(
        ~((pl.col("sr_id") == pulled.sr_id) & (pl.col("market") == "btts_ft") & (pl.col("bookmaker") != "betpawa")))
    shortened = (pl.col("sr_id") == steam.sr_id) & (pl.col("bookmaker") == "sportybet") & (
        pl.col("market") == "1x2_ft") & (pl.col("outcome") == "home")
    prices = prices.with_columns(odds=pl.when(shortened).then((pl.col("odds") * 0.8).round(2)).otherwise("odds"))
    run_id = store.start_run("schedule", list(BOOKS))
    store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=datetime.now(timezone.utc) - timedelta(minutes=1),
        events=[EventRow(e.sr_id, e.kickoff, e.tournament.country, e.tournament.name, e.home, e.away)
                for e in (steam, pulled)],
        book_events=[BookEventRow(b, e.book_ids[b], e.sr_id) for e in (steam, pulled) for b in BOOKS],
        prices=prices, scraped=pairs,
        statuses=[ScrapeStatusRow(e.sr_id, BOOKS, BOOKS, (), {}, 100) for e in (steam, pulled)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA), batches_total=1, alert_thresholds=AlertThresholds(),
    ))
    store.finish_run(run_id, "COMPLETED", {})
    return Alerted(seeded, steam.sr_id, pulled.sr_id)
