"""`oddsdesk scheduler` in tier mode against the simulator: near events are refreshed more often
than far ones, in tier runs the runs table shows, and tier settings apply without a restart.
Also the simulator's truth endpoint the freshness benchmark measures against."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import polars as pl
import pytest

from engine.config import BOOKS
from engine.simulator.process import start_simulator
from engine.simulator.server import build_app
from engine.simulator.world import build_world
from engine.store import Store
from scheduler.main import SchedulerService
from tests.conftest import sim_env, sim_settings
from tests.test_scheduler_process import start_scheduler, wait_for

pytestmark = pytest.mark.integration


def runs(store: Store) -> list[dict]:
    return list(store.runs(limit=500).iter_rows(named=True))


def refreshes(store: Store) -> pl.DataFrame:
    """Per tier run, the events it stored (kind, run id, sr_id)."""
    return store.query("""
        SELECT r.id AS run_id, r.kind, s.sr_id FROM event_scrape_status s JOIN scrape_runs r ON r.id = s.run_id
        WHERE r.kind LIKE 'tier:%' AND r.status <> 'RUNNING'""")


def test_tier_mode_refreshes_near_events_most_often_and_applies_settings_live(tmp_path):
    with start_simulator(seed=5, events=40, faults="all:latency=20,jitter=5") as sim:
        db = tmp_path / "odds.duckdb"
        log_path = tmp_path / "scheduler.log"
        env = sim_env(sim, db, ODDSDESK_TIER_TICK_S="2", ODDSDESK_TIER_NEAR_INTERVAL_MIN="0.5",
                      ODDSDESK_TIER_DAY_INTERVAL_MIN="30", ODDSDESK_TIER_FAR_INTERVAL_MIN="30",
                      ODDSDESK_DISCOVERY_INTERVAL_MIN="30", ODDSDESK_SCRAPE_INTERVAL_MIN="0.5")
        store = Store(db)
        proc = start_scheduler(env, log_path)
        try:
            first = wait_for(lambda: [r for r in runs(store) if r["status"] != "RUNNING"], 90,
                             "the start-up full cycle", proc, log_path)[-1]
            assert (first["kind"], first["status"]) == ("full", "COMPLETED")
            now = datetime.now(UTC)
            events = store.events()
            near = set(events.filter(pl.col("kickoff") <= now + timedelta(hours=2))["sr_id"])
            later_events = events.filter(pl.col("kickoff") > now + timedelta(hours=2, minutes=30)).sort("kickoff")
            others = set(later_events["sr_id"])
            assert near and others

            def near_refreshed_twice():
                done = refreshes(store).filter(pl.col("sr_id").is_in(list(near)))
                counts = done.group_by("sr_id").len()
                return counts.height == len(near) and counts["len"].min() >= 2

            wait_for(near_refreshed_twice, 150, "two tier refreshes of every near event", proc, log_path)
            done = refreshes(store)
            per_event = dict(done.group_by("sr_id").len().iter_rows())
            assert min(per_event[s] for s in near) >= 2
            assert not others & set(per_event)  # day and far: their 30 min have not passed
            assert set(done["kind"]) == {"tier:near"}
            # A tier run is one ordinary run: progress events like a full cycle's.
            progress = store.run_progress(int(done["run_id"].max()))
            assert {"CYCLE_START", "BATCH_COMPLETE", "CYCLE_COMPLETE"} <= set(progress["kind"])
            # The scrape interval (0.5 min) would have started more full cycles in full mode.
            assert [r["kind"] for r in runs(store)].count("full") == 1

            status = store.get_settings()["scheduler_status"]
            assert status["mode"] == "tiers"
            counts = {t["name"]: t["events"] for t in status["tiers"]["tiers"]}
            assert counts["near"] == len(near) and counts["day"] + counts["far"] == len(others)
            assert status["tiers"]["behind"] == {}

            # Settings change, no restart: a wider near tier takes in the next later event at once.
            before = int(done["run_id"].max())
            soonest = later_events.row(0, named=True)
            hours = (soonest["kickoff"] - now).total_seconds() // 3600 + 1
            store.put_settings({"tier_near_hours": hours, "tier_day_hours": hours + 24})

            def widened():
                later = refreshes(store).filter((pl.col("run_id") > before) & (pl.col("sr_id") == soonest["sr_id"]))
                return set(later["kind"])

            kinds = wait_for(widened, 60, "a tier run of an event the wider near tier took in", proc, log_path)
            assert kinds == {"tier:near"}

            # And back to full cycles, still without a restart.
            store.put_settings({"refresh_mode": "full"})
            wait_for(lambda: [r["kind"] for r in runs(store) if r["status"] != "RUNNING"].count("full") >= 2, 90,
                     "a second full cycle in full mode", proc, log_path)
        finally:
            proc.terminate()
            proc.wait(60)
        assert proc.returncode == 0


def test_a_slow_book_slips_alone_after_a_discovery_run(tmp_path):
    """The coordinator's own ticks on a fresh store: a discovery run lists the events, then one
    tier run fetches them all; Bet9ja answers slower than the tier run allows a request, so its
    prices fail and wait for a retry while BetPawa's and SportyBet's are stored."""
    with start_simulator(seed=9, events=24, faults="bet9ja:latency=20000,scope=detail") as sim:
        sim.warm()
        service = SchedulerService(sim_settings(sim, tmp_path / "odds.duckdb", tier_tick_s=3.0))
        service.settings = service.load_settings()
        store = service.store
        service.coordinator.tick()
        discovery, tier = sorted(runs(store), key=lambda r: r["id"])
        assert (discovery["kind"], discovery["status"], discovery["events_scraped"]) == ("discovery", "COMPLETED", 0)
        assert discovery["events_total"] == store.events().height == 24
        assert tier["kind"].startswith("tier:") and tier["status"] == "PARTIAL"

        listed = store.query("SELECT sr_id, bookmaker FROM bookmaker_events")
        stored = store.query("SELECT DISTINCT sr_id, bookmaker FROM odds_current")
        for book in ("betpawa", "sportybet"):
            assert (stored.filter(pl.col("bookmaker") == book).height
                    == listed.filter(pl.col("bookmaker") == book).height)
        assert stored.filter(pl.col("bookmaker") == "bet9ja").is_empty()
        errors = store.run(tier["id"])["summary"]["books"]["bet9ja"]["error_samples"]
        assert errors and all("per request" in e for e in errors)

        budget = service.coordinator.budget(service.settings)
        assert budget["bet9ja"] < budget["betpawa"]  # measured slower: fewer Bet9ja requests per tick
        # Everything fresh or waiting for its retry: the next tick starts no run.
        service.coordinator.tick()
        assert len(runs(store)) == 2


ANCHOR = datetime(2030, 5, 18, 12, 0, tzinfo=UTC)


def post_truth(app, pairs: list[dict]) -> dict:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            return await client.post("/_sim/truth", json={"pairs": pairs})
    resp = asyncio.run(go())
    assert resp.status_code == 200, resp.text
    return resp.json()


def advance(app, body: dict, path: str = "/_sim/advance") -> tuple[float, float]:
    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            assert (await client.post(path, json=body)).status_code == 200
    t0 = time.time()
    asyncio.run(go())
    return t0, time.time()


def test_simulator_truth_knows_when_each_price_changed():
    world = build_world(seed=3, events=12, anchor=ANCHOR)
    app = build_app(world, clock=lambda: ANCHOR)
    event = next(e for e in world.events if set(e.books) == set(BOOKS))
    start = time.time()
    t1 = advance(app, {"n": 1})
    t2 = advance(app, {"n": 1})
    t5 = advance(app, {"epoch": 5}, "/_sim/epoch")
    pairs = [{"book": b, "sr_id": event.sr_id, "since": start} for b in BOOKS]
    truth = post_truth(app, pairs)
    assert truth["epoch"] == 5
    for book, found in zip(BOOKS, truth["pairs"]):
        assert found["book"] == book and found["epoch"] == 5
        quotes = {(p.market, p.line, p.outcome): (p.odds, p.available) for p in world.quotes(book, event.sr_id, 5)}
        rows = {(m, l, o): (odds, a, first, last) for m, l, o, odds, a, first, last in found["prices"]}
        assert {k: v[:2] for k, v in rows.items()} == quotes
        at1, at2 = world.changed_prices(book, event.sr_id, 1), world.changed_prices(book, event.sr_id, 2)
        epoch2 = {(p.market, p.line, p.outcome): (p.odds, p.available) for p in world.quotes(book, event.sr_id, 2)}
        at5 = {k for k, v in quotes.items() if epoch2.get(k) != v}
        assert at1 or at2 or at5, "some price moved in five epochs"
        for key, (_, _, first, last) in rows.items():
            changes = [t for keys, t in ((at1, t1), (at2, t2), (at5, t5)) if key in keys]
            if not changes:
                assert first is None and last is None
                continue
            assert changes[0][0] <= first <= changes[0][1]
            assert changes[-1][0] <= last <= changes[-1][1]
    # Nothing has changed since now; an unknown book or event is refused.
    quiet = post_truth(app, [{"book": "bet9ja", "sr_id": event.sr_id, "since": time.time()}])
    assert all(p[5] is None and p[6] is None for p in quiet["pairs"][0]["prices"])

    async def bad(body: dict) -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            return (await client.post("/_sim/truth", json=body)).status_code
    assert asyncio.run(bad({"pairs": [{"book": "nope", "sr_id": event.sr_id}]})) == 400
    assert asyncio.run(bad({"pairs": [{"book": "betpawa", "sr_id": "1"}]})) == 400
    assert asyncio.run(bad({"nope": []})) == 400
