"""The simulator fails on request, the way real bookmakers fail, at the configured rates.

Rates are checked over 1,000 requests in-process (``httpx.ASGITransport``); a hanging request
needs real sockets and a client timeout, so that one runs against a real process on loopback.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from engine.config import BOOKS
from engine.simulator.faults import KINDS, BookFaults, FaultConfig, FaultInjector, FaultSpecError
from engine.simulator.process import ROOT, start_simulator
from engine.simulator.server import build_app
from engine.simulator.world import build_world

ANCHOR = datetime(2030, 5, 18, 12, 0, tzinfo=UTC)
TREES = {
    "betpawa": "/betpawa/api/sportsbook/v3/categories/list/2",
    "sportybet": "/sportybet/api/ng/factsCenter/popularAndSportList?sportId=sr:sport:1&timeline=&productId=3",
    "bet9ja": "/bet9ja/desktop/feapi/PalimpsestAjax/GetSports?DISP=0&v_cache_version=1.301.2.225",
}


@pytest.fixture(scope="module")
def world():
    return build_world(seed=2, events=20, anchor=ANCHOR)


def app_with(world, spec: str | FaultConfig):
    config = FaultConfig.parse(spec) if isinstance(spec, str) else spec
    return build_app(world, config, clock=lambda: ANCHOR)


def hammer(app, urls: list[str]) -> list[tuple[httpx.Response, float]]:
    """GET each url in order (so fault draws follow the request sequence); response and seconds."""
    async def go() -> list[tuple[httpx.Response, float]]:
        out = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            for url in urls:
                started = time.perf_counter()
                resp = await client.get(url)
                out.append((resp, time.perf_counter() - started))
        return out
    return asyncio.run(go())


def parses(resp: httpx.Response) -> bool:
    try:
        json.loads(resp.content)
    except ValueError:
        return False
    return True


def outcome(resp: httpx.Response) -> str:
    """Which fault a response shows, as a client would classify it."""
    if resp.status_code == 504:
        return "timeout"
    if resp.status_code != 200:
        return str(resp.status_code)
    if parses(resp):
        return "ok"
    return "truncated" if resp.content.startswith(b"{") else "malformed"


# Grammar ----------------------------------------------------------------------------------

def test_spec_sets_faults_per_book_with_book_sections_overriding_all():
    cfg = FaultConfig.parse("all:latency=150,jitter=50;bet9ja:429=0.1,timeout=0.02,latency=400;seed=9")
    assert cfg.seed == 9
    bet9ja, betpawa = cfg.for_book("bet9ja"), cfg.for_book("betpawa")
    assert (bet9ja.mean_ms, bet9ja.jitter_ms, bet9ja.rate_429, bet9ja.rate_timeout) == (400, 50, 0.1, 0.02)
    assert (betpawa.mean_ms, betpawa.jitter_ms, betpawa.rate_429) == (150, 50, 0.0)
    assert FaultConfig.parse("sportybet:scope=detail,503=0.5,retry_after=7,hang=3").for_book("sportybet") == BookFaults(
        scope="detail", rate_503=0.5, retry_after_s=7, hang_s=3)


def test_config_survives_a_json_round_trip_without_losing_the_all_fallback():
    cfg = FaultConfig.parse("all:latency=20;betpawa:500=0.3")
    again = FaultConfig.model_validate(json.loads(json.dumps(cfg.to_json())))
    assert all(again.for_book(b) == cfg.for_book(b) for b in BOOKS)
    assert again.for_book("betpawa").mean_ms == 20


@pytest.mark.parametrize("spec, names", [
    ("betpawa 500=0.1", "betpawa 500=0.1"),
    ("pinnacle:500=0.1", "pinnacle"),
    ("bet9ja:418=0.1", "418"),
    ("all:500=0.7,503=0.6", "1.300"),
    ("all:latency=fast", "latency=fast"),
    ("all:500=0.6;bet9ja:503=0.6", "1.200"),
    ("seed=x", "seed"),
])
def test_a_bad_spec_is_refused_naming_the_offending_part(spec, names):
    with pytest.raises(FaultSpecError, match=names.replace(".", r"\.")):
        FaultConfig.parse(spec)


def test_a_bad_spec_stops_the_server_command_with_a_message():
    run = subprocess.run([sys.executable, "-m", "engine.simulator.server", "--faults", "bet9ja:418=1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "418" in run.stderr


# Rates ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_each_fault_happens_at_its_configured_rate(world, kind):
    settings = {f"rate_{kind}": 0.2, "hang_s": 0.001}
    app = app_with(world, FaultConfig(seed=4, books={"bet9ja": BookFaults(**settings)}))
    seen = [outcome(resp) for resp, _ in hammer(app, [TREES["bet9ja"]] * 1000)]
    assert 140 <= seen.count(kind) <= 260, (kind, seen.count(kind))
    assert set(seen) == {"ok", kind}


def test_rates_of_several_faults_add_up_on_one_book_and_spare_the_others(world):
    app = app_with(world, "betpawa:403=0.1,500=0.1,malformed=0.1")
    seen = [outcome(resp) for resp, _ in hammer(app, [TREES["betpawa"]] * 1000)]
    for kind in ("403", "500", "malformed"):
        assert 60 <= seen.count(kind) <= 140, (kind, seen.count(kind))
    assert 600 <= seen.count("ok") <= 800
    assert all(outcome(r) == "ok" for r, _ in hammer(app, [TREES["sportybet"], TREES["bet9ja"]] * 50))


def test_429_tells_the_client_when_to_retry(world):
    app = app_with(world, "sportybet:429=1,retry_after=3")
    resp, _ = hammer(app, [TREES["sportybet"]])[0]
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"


def test_truncated_json_is_a_cut_off_prefix_that_fails_to_parse(world):
    clean = hammer(app_with(world, ""), [TREES["sportybet"]])[0][0].content
    for resp, _ in hammer(app_with(world, "sportybet:truncated=1"), [TREES["sportybet"]] * 20):
        assert resp.status_code == 200
        assert 0 < len(resp.content) < len(clean) and clean.startswith(resp.content)
        with pytest.raises(ValueError):
            json.loads(resp.content)


def test_malformed_answers_are_block_pages_or_garbage_never_json(world):
    answers = hammer(app_with(world, "betpawa:malformed=1"), [TREES["betpawa"]] * 40)
    assert not any(parses(resp) for resp, _ in answers)
    assert any(resp.headers["content-type"].startswith("text/html") for resp, _ in answers)
    assert any(resp.headers["content-type"].startswith("application/json") for resp, _ in answers)


def test_detail_scope_leaves_trees_and_lists_alone(world):
    event = next(e for e in world.events if "bet9ja" in e.books)
    app = app_with(world, "bet9ja:500=1,latency=200,scope=detail")
    (tree, tree_s), (detail, _) = hammer(app, [TREES["bet9ja"],
                                               f"/bet9ja/desktop/feapi/PalimpsestAjax/GetEvent?EVENTID={event.book_ids['bet9ja']}"])
    assert tree.status_code == 200 and tree_s < 0.15
    assert detail.status_code == 500


def test_the_same_seed_replays_the_same_faults_and_another_seed_does_not(world):
    def sequence(seed: int) -> list[str]:
        config = FaultConfig(seed=seed, books={"all": BookFaults(rate_500=0.3, rate_truncated=0.2)})
        return [outcome(r) for r, _ in hammer(app_with(world, config), [TREES["betpawa"]] * 200)]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)


# Latency ----------------------------------------------------------------------------------

def test_latency_delays_every_response(world):
    timings = [s for _, s in hammer(app_with(world, "betpawa:latency=120"), [TREES["betpawa"]] * 5)]
    assert all(s >= 0.11 for s in timings), timings
    fast = [s for _, s in hammer(app_with(world, ""), [TREES["betpawa"]] * 5)]
    assert max(fast) < 0.1


def test_latency_is_spread_by_jitter_around_its_mean():
    injector = FaultInjector(FaultConfig.parse("all:latency=150,jitter=50"))
    delays = [injector.decide("sportybet", "detail").delay_s for _ in range(4000)]
    assert 0.145 <= statistics.mean(delays) <= 0.155
    assert 0.045 <= statistics.stdev(delays) <= 0.055
    assert min(delays) >= 0.0


# Over real sockets --------------------------------------------------------------------------

def test_a_timeout_hangs_until_the_client_gives_up_and_faults_can_change_at_run_time():
    with start_simulator(port=0, seed=2, events=10, faults="bet9ja:timeout=1,hang=30") as sim:
        url = sim.urls["bet9ja"] + "/desktop/feapi/PalimpsestAjax/GetSports?DISP=0"
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url, timeout=0.5)
        assert time.monotonic() - started < 5
        state = sim.set_faults(FaultConfig.parse("bet9ja:429=1,retry_after=2"))
        assert state["faults"]["books"]["bet9ja"] == {"rate_429": 1.0, "retry_after_s": 2}
        resp = httpx.get(url, timeout=5)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "2"
        sim.set_faults(None)
        assert httpx.get(url, timeout=5).json()["R"] == "OK"
        assert sim.state()["requests"]["bet9ja"] == 3
