"""The simulator serves the three books' real paths and JSON shapes from one seeded world.

Shape tests run the app in-process through ``httpx.ASGITransport``; the launcher test starts a
real process on loopback. Payloads are read back with a small decoder written from
reference/market-mapping.md §1.4 (not our parsers), so a renderer bug cannot hide behind a
parser bug of the same kind.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from engine.bookmakers._models import Price
from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue, normalize_line
from engine.simulator.noise import MIN_SHARE, TARGET_VOLUME
from engine.simulator.process import start_simulator
from engine.simulator.server import build_app
from engine.simulator.world import build_world

ANCHOR = datetime(2030, 5, 18, 12, 0, tzinfo=UTC)
BP = "/betpawa/api/sportsbook/v3"
SB = "/sportybet/api/ng/factsCenter"
B9 = "/bet9ja/desktop/feapi/PalimpsestAjax"
SB_MARKETS = "1,18,10,29,11,26,36,14"
B9_KEY = re.compile(r"^S_(?P<market>[A-Z0-9-]+?)(?:@(?P<param>[^_]+))?_(?P<outcome>.+)$")


# Helpers ----------------------------------------------------------------------------------

def fetch(app, *requests: tuple[str, str] | tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """Send requests in order to the in-process app; each is (method, url[, httpx kwargs])."""
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
            return [await client.request(r[0], r[1], **(r[2] if len(r) > 2 else {})) for r in requests]
    return asyncio.run(go())


def get(app, url: str, **kw: Any) -> httpx.Response:
    return fetch(app, ("GET", url, kw))[0]


def by_queries(competition_id: str, skip: int = 0, take: int = 100) -> str:
    query = {"queries": [{"query": {"eventType": "UPCOMING", "categories": ["2"],
                                    "zones": {"competitions": [competition_id]}, "hasOdds": True},
                          "view": {}, "skip": skip, "take": take}]}
    return f"{BP}/events/lists/by-queries?q={quote(json.dumps(query))}"


def pc_events(tournament_id: str, market_ids: str = SB_MARKETS) -> tuple[str, str, dict[str, Any]]:
    body = [{"sportId": "sr:sport:1", "marketId": market_ids, "tournamentId": [[tournament_id]]}]
    return ("POST", f"{SB}/pcEvents", {"json": body})


def detail_url(book: str, event) -> str:
    book_id = event.book_ids[book]
    return {"betpawa": f"{BP}/events/{book_id}",
            "sportybet": f"{SB}/event?eventId={book_id}&productId=3&_t=1",
            "bet9ja": f"{B9}/GetEvent?EVENTID={book_id}&v_cache_version=1.301.2.225"}[book]


def on(book: str, world) -> list:
    """The book's upcoming events at ANCHOR, in the order the lists show them."""
    return sorted((e for e in world.events if book in e.books and e.kickoff > ANCHOR),
                  key=lambda e: (e.kickoff, e.sr_id))


def decode_betpawa(payload: dict) -> tuple[set[Price], list[str]]:
    """Canonical prices of a BetPawa detail payload, and the market ids the catalogue lacks."""
    cat, prices, foreign = load_catalogue(), set(), []
    for market in payload["markets"]:
        mid = market["marketType"]["id"]
        candidates = cat.lookup("betpawa", mid)
        if not candidates:
            foreign.append(mid)
            continue
        for row in market["row"]:
            for price in row["prices"]:
                m = next(c for c in candidates if price["name"] in c.outcome_names("betpawa"))
                line = None
                if m.line_kind == "total":
                    line = float(row["prices"][0]["handicap"])
                elif m.line_kind in ("asian_handicap", "european_handicap"):
                    line = float(row["formattedHandicap"])
                prices.add(Price(m.key, normalize_line(line), m.outcome_names("betpawa")[price["name"]],
                                 price["price"], not price["suspended"]))
    return prices, foreign


def sportybet_line(kind: str, specifier: str | None) -> float | None:
    spec = dict(part.split("=", 1) for part in (specifier or "").split("|") if part)
    if kind == "total":
        return float(spec["total"])
    if kind in ("asian_handicap", "european_handicap"):
        home, _, away = spec["hcp"].partition(":")
        return float(home) - float(away) if away else float(home)
    return None


def decode_sportybet(data: dict) -> tuple[set[Price], list[str]]:
    cat, prices, foreign = load_catalogue(), set(), []
    for market in data["markets"]:
        candidates = cat.lookup("sportybet", market["id"])
        if not candidates:
            foreign.append(market["id"])
            continue
        for outcome in market["outcomes"]:
            desc = outcome["desc"].casefold()
            m = next(c for c in candidates if desc in {n.casefold() for n in c.outcome_names("sportybet")})
            key = {n.casefold(): k for n, k in m.outcome_names("sportybet").items()}[desc]
            prices.add(Price(m.key, normalize_line(sportybet_line(m.line_kind, market.get("specifier"))), key,
                             float(outcome["odds"]), outcome["isActive"] == 1))
    return prices, foreign


def decode_bet9ja(odds: dict[str, str]) -> tuple[set[Price], list[str]]:
    cat, prices, foreign = load_catalogue(), set(), []
    for key, value in odds.items():
        parts = B9_KEY.match(key)
        assert parts, key
        candidates = [m for m in cat.lookup("bet9ja", "S_" + parts["market"])
                      if parts["outcome"] in m.outcome_names("bet9ja")]
        if not candidates:
            foreign.append(key)
            continue
        m = candidates[0]
        line = None if parts["param"] is None else float(parts["param"])
        prices.add(Price(m.key, normalize_line(line), m.outcome_names("bet9ja")[parts["outcome"]], float(value)))
    return prices, foreign


def truth(world, book: str, sr_id: str, epoch: int = 0) -> set[Price]:
    """What a book's payload must say: the world's quotes at 2 decimals; Bet9ja shows available ones only."""
    return {Price(p.market, normalize_line(p.line), p.outcome, round(p.odds, 2), p.available)
            for p in world.quotes(book, sr_id, epoch) if book != "bet9ja" or p.available}


@pytest.fixture(scope="module")
def world():
    return build_world(seed=5, events=60, anchor=ANCHOR)


@pytest.fixture(scope="module")
def app(world):
    return build_app(world, clock=lambda: ANCHOR)


# BetPawa ----------------------------------------------------------------------------------

def test_betpawa_tree_lists_each_competition_with_upcoming_events(world, app):
    resp = get(app, f"{BP}/categories/list/2")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    block = resp.json()["withRegions"][0]
    assert block["category"] == {"id": "2", "name": "Football"}
    listed = {c["competition"]["id"]: c["eventCount"] for r in block["regions"] for c in r["competitions"]}
    expected: dict[str, int] = {}
    for e in on("betpawa", world):
        expected[e.tournament.betpawa_id] = expected.get(e.tournament.betpawa_id, 0) + 1
    assert listed == expected
    assert all(isinstance(r["region"]["id"], str) and r["region"]["name"] for r in block["regions"])


def test_betpawa_by_queries_returns_a_competitions_upcoming_events_page_by_page(world, app):
    t = on("betpawa", world)[0].tournament
    expected = [e for e in on("betpawa", world) if e.tournament.key == t.key]
    full, first_two, rest = fetch(app, ("GET", by_queries(t.betpawa_id)), ("GET", by_queries(t.betpawa_id, take=2)),
                                  ("GET", by_queries(t.betpawa_id, skip=2)))
    items = full.json()["responses"][0]["responses"]
    assert [i["id"] for i in items] == [e.book_ids["betpawa"] for e in expected]
    assert first_two.json()["responses"][0]["responses"] == items[:2]
    assert rest.json()["responses"][0]["responses"] == items[2:]
    for item, event in zip(items, expected):
        assert item["startTime"] == event.kickoff.strftime("%Y-%m-%dT%H:%M:%SZ")
        widget = next(w for w in item["widgets"] if w["type"] == "SPORTRADAR")
        assert widget["id"] == event.sr_id and isinstance(widget["id"], str) and widget["id"].isdigit()
        assert {p["position"]: p["name"] for p in item["participants"]} == {1: event.home, 2: event.away}
        assert item["competition"]["id"] == t.betpawa_id


def test_betpawa_event_detail_carries_every_quoted_price_in_betpawas_form(world, app):
    event = on("betpawa", world)[0]
    payload = get(app, detail_url("betpawa", event)).json()
    assert payload["id"] == event.book_ids["betpawa"] and payload["name"] == f"{event.home} - {event.away}"
    assert payload["competition"]["id"] == event.tournament.betpawa_id and payload["region"]["name"]
    cat = load_catalogue()
    for market in payload["markets"]:
        mt = market["marketType"]
        assert isinstance(mt["id"], str) and mt["tabs"][0] == "all"
        known = cat.lookup("betpawa", mt["id"])
        for row in market["row"]:
            for price in row["prices"]:
                assert isinstance(price["price"], float | int) and isinstance(price["suspended"], bool)
            if known and known[0].line_kind == "total":
                assert row["formattedHandicap"] is None
                assert isinstance(row["prices"][0]["handicap"], str)
            if known and known[0].line_kind in ("asian_handicap", "european_handicap"):
                assert isinstance(row["formattedHandicap"], str)
    prices, _ = decode_betpawa(payload)
    assert prices == truth(world, "betpawa", event.sr_id)


def test_betpawa_unknown_event_is_a_404(app):
    assert get(app, f"{BP}/events/99999999").status_code == 404


# SportyBet --------------------------------------------------------------------------------

def test_sportybet_tree_and_pcevents_agree_on_tournament_ids(world, app):
    tree = get(app, f"{SB}/popularAndSportList?sportId=sr:sport:1&timeline=&productId=3&_t=1").json()
    assert tree["bizCode"] == 10000
    football = next(s for s in tree["data"]["sportList"] if s["id"] == "sr:sport:1")
    tournaments = {t["id"]: c["name"] for c in football["categories"] for t in c["tournaments"]}
    assert set(tournaments) == {e.tournament.sportybet_id for e in on("sportybet", world)}
    tid = next(iter(tournaments))
    resp = fetch(app, pc_events(tid))[0]
    assert resp.status_code == 200 and resp.json()["bizCode"] == 10000
    events = resp.json()["data"][0]["events"]
    expected = [e for e in on("sportybet", world) if e.tournament.sportybet_id == tid]
    assert [e["eventId"] for e in events] == [f"sr:match:{x.sr_id}" for x in expected]
    for item in events:
        assert isinstance(item["estimateStartTime"], int)
        assert item["sport"]["category"]["tournament"]["id"] == tid
        assert item["sport"]["category"]["name"] == tournaments[tid]
        assert {m["id"] for m in item["markets"]} <= set(SB_MARKETS.split(","))


def test_sportybet_event_detail_has_strict_types_and_every_quoted_price(world, app):
    event = on("sportybet", world)[0]
    resp = get(app, detail_url("sportybet", event))
    assert resp.status_code == 200 and resp.json()["bizCode"] == 10000
    data = resp.json()["data"]
    assert data["eventId"] == f"sr:match:{event.sr_id}"
    assert data["estimateStartTime"] == int(event.kickoff.timestamp() * 1000)
    assert (data["homeTeamName"], data["awayTeamName"]) == (event.home, event.away)
    for market in data["markets"]:
        assert isinstance(market["id"], str)
        assert isinstance(market["product"], int) and isinstance(market["status"], int)
        assert isinstance(market["favourite"], int) and isinstance(market["banned"], bool)
        assert isinstance(market["desc"], str)
        if "specifier" in market:
            assert re.fullmatch(r"(total=-?[\d.]+|hcp=-?[\d.]+(:[\d.]+)?|variant=sr:[a-z_]+:\S+|from=\d+\|to=\d+)",
                                market["specifier"]), market["specifier"]
        for outcome in market["outcomes"]:
            assert isinstance(outcome["id"], str) and isinstance(outcome["odds"], str)
            assert isinstance(outcome["probability"], str) and outcome["isActive"] in (0, 1)
            assert float(outcome["odds"]) > 1.0
    prices, _ = decode_sportybet(data)
    assert prices == truth(world, "sportybet", event.sr_id)


def test_sportybet_unknown_event_is_200_with_a_business_error(app):
    resp = get(app, f"{SB}/event?eventId=sr:match:1&productId=3")
    assert resp.status_code == 200
    assert resp.json()["bizCode"] != 10000 and resp.json()["data"] is None


# Bet9ja -----------------------------------------------------------------------------------

def test_bet9ja_sports_and_groups_agree_on_ids(world, app):
    sports = get(app, f"{B9}/GetSports?DISP=0&v_cache_version=1.301.2.225").json()
    assert sports["R"] == "OK"
    groups = {gid: (sg["SG_DESC"], g["G_DESC"])
              for sg in sports["D"]["PAL"]["1"]["SG"].values() for gid, g in sg["G"].items()}
    assert set(groups) == {e.tournament.bet9ja_id for e in on("bet9ja", world)}
    gid = next(iter(groups))
    resp = get(app, f"{B9}/GetEventsInGroupV2?GROUPID={gid}&DISP=0&GROUPMARKETID=1&v_cache_version=1.301.2.225")
    items = resp.json()["D"]["E"]
    expected = [e for e in on("bet9ja", world) if e.tournament.bet9ja_id == gid]
    assert [i["EXTID"] for i in items] == [e.sr_id for e in expected]
    for item, event in zip(items, expected):
        assert isinstance(item["ID"], int) and isinstance(item["EXTID"], str) and isinstance(item["C"], str)
        assert item["DS"] == f"{event.home} - {event.away}"
        assert datetime.strptime(item["STARTDATE"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) == event.kickoff
        assert (str(item["GID"]), item["GN"], item["SG"]) == (gid, groups[gid][1], groups[gid][0])
        assert all(k.startswith("S_1X2_") and isinstance(v, str) for k, v in item["O"].items())


def test_bet9ja_event_detail_has_flat_string_odds_for_every_available_price(world, app):
    event = on("bet9ja", world)[0]
    resp = get(app, detail_url("bet9ja", event))
    body = resp.json()
    assert body["R"] == "OK"
    d = body["D"]
    assert d["ID"] == int(event.book_ids["bet9ja"]) and d["EXTID"] == event.sr_id
    assert str(d["GID"]) == event.tournament.bet9ja_id and d["SG"] == event.tournament.country
    assert all(isinstance(v, str) and float(v) > 1.0 for v in d["O"].values())
    prices, _ = decode_bet9ja(d["O"])
    assert prices == truth(world, "bet9ja", event.sr_id)


def test_bet9ja_team_totals_share_one_key_family_per_line(world, app):
    """Home and away totals of a line sit side by side as S_HAOU@<line>_OH/UH/OA/UA."""
    found = False
    for event in on("bet9ja", world)[:10]:
        keys = list(get(app, detail_url("bet9ja", event)).json()["D"]["O"])
        haou = [k for k in keys if k.startswith("S_HAOU@")]
        for line in {k.split("@")[1].split("_")[0] for k in haou}:
            family = [k for k in haou if k.startswith(f"S_HAOU@{line}_")]
            positions = [keys.index(k) for k in family]
            assert positions == list(range(min(positions), min(positions) + len(family)))
            found = found or ({k.rsplit("_", 1)[1] for k in family} >= {"OH", "OA"})
    assert found, "no event quotes home and away totals on one line"


def test_bet9ja_unknown_event_is_r_e(app):
    assert get(app, f"{B9}/GetEvent?EVENTID=1&v_cache_version=1.301.2.225").json() == {"R": "E", "D": None}


# Across books -----------------------------------------------------------------------------

VOLUME: dict[str, Callable[[Any], tuple[int, list[str]]]] = {
    "betpawa": lambda body: (len(body["markets"]), decode_betpawa(body)[1]),
    "sportybet": lambda body: (len(body["data"]["markets"]), decode_sportybet(body["data"])[1]),
    "bet9ja": lambda body: (len({k.rsplit("_", 1)[0] for k in body["D"]["O"]}),
                            sorted({k.rsplit("_", 1)[0] for k in decode_bet9ja(body["D"]["O"])[1]})),
}


@pytest.mark.parametrize("book", BOOKS)
def test_unmapped_noise_fills_each_book_to_real_volumes_without_touching_the_catalogue(world, app, book):
    events = on(book, world)[:8]
    first = fetch(app, *(("GET", detail_url(book, e)) for e in events))
    again = fetch(app, *(("GET", detail_url(book, e)) for e in events))
    for resp, repeat in zip(first, again):
        assert resp.content == repeat.content  # the same noise every time
        volume, foreign = VOLUME[book](resp.json())
        assert volume >= 0.8 * TARGET_VOLUME[book]
        assert len(foreign) >= MIN_SHARE * TARGET_VOLUME[book]


def test_same_seed_serves_byte_identical_payloads_and_another_seed_does_not(world):
    def snapshot(seed: int) -> list[bytes]:
        w = build_world(seed=seed, events=60, anchor=ANCHOR)
        a = build_app(w, clock=lambda: ANCHOR)
        requests: list[Any] = [("GET", f"{BP}/categories/list/2"), ("GET", f"{SB}/popularAndSportList?sportId=sr:sport:1"),
                               ("GET", f"{B9}/GetSports?DISP=0")]
        for book in BOOKS:
            requests += [("GET", detail_url(book, e)) for e in on(book, w)[:3]]
        t = on("sportybet", w)[0].tournament
        requests += [("GET", by_queries(t.betpawa_id)), pc_events(t.sportybet_id),
                     ("GET", f"{B9}/GetEventsInGroupV2?GROUPID={t.bet9ja_id}&DISP=0&GROUPMARKETID=1")]
        return [r.content for r in fetch(a, *requests)]

    one, two, other = snapshot(5), snapshot(5), snapshot(6)
    assert one == two
    assert one != other


def test_events_whose_kickoff_has_passed_are_no_longer_listed(world):
    first = next(e for e in on("betpawa", world) if e.books >= set(BOOKS))
    t = first.tournament
    lists = [("GET", by_queries(t.betpawa_id)), pc_events(t.sportybet_id, market_ids=""),
             ("GET", f"{B9}/GetEventsInGroupV2?GROUPID={t.bet9ja_id}&DISP=0&GROUPMARKETID=1")]

    def listed(now: datetime) -> set[str]:
        bp, sb, b9 = fetch(build_app(world, clock=lambda: now), *lists)
        return ({w["id"] for i in bp.json()["responses"][0]["responses"] for w in i["widgets"] if w["type"] == "SPORTRADAR"}
                | {e["eventId"].split(":")[-1] for e in sb.json()["data"][0]["events"]}
                | {e["EXTID"] for e in b9.json()["D"]["E"]})

    assert first.sr_id in listed(first.kickoff - timedelta(minutes=1))
    assert first.sr_id not in listed(first.kickoff)


def test_control_api_moves_every_book_to_the_requested_epoch(world):
    app = build_app(world, clock=lambda: ANCHOR)
    state = get(app, "/_sim/state").json()
    assert state["seed"] == world.seed and state["events"] == len(world.events)
    assert datetime.fromisoformat(state["anchor"]) == world.anchor
    assert state["epoch"] == 0 and state["requests"] == {b: 0 for b in BOOKS}
    event = next(e for e in on("sportybet", world) if "bet9ja" in e.books and "betpawa" in e.books)
    advanced, moved = fetch(app, ("POST", "/_sim/advance", {"json": {"n": 3}}), ("POST", "/_sim/epoch", {"json": {"epoch": 5}}))
    assert advanced.json()["epoch"] == 3 and moved.json()["epoch"] == 5
    bp, sb, b9 = fetch(app, *(("GET", detail_url(b, event)) for b in BOOKS))
    assert decode_betpawa(bp.json())[0] == truth(world, "betpawa", event.sr_id, 5)
    assert decode_sportybet(sb.json()["data"])[0] == truth(world, "sportybet", event.sr_id, 5)
    assert decode_bet9ja(b9.json()["D"]["O"])[0] == truth(world, "bet9ja", event.sr_id, 5)
    assert truth(world, "sportybet", event.sr_id, 5) != truth(world, "sportybet", event.sr_id, 0)
    assert get(app, "/_sim/state").json()["requests"] == {b: 1 for b in BOOKS}
    refused = fetch(app, ("POST", "/_sim/epoch", {"json": {"nope": 1}}), ("POST", "/_sim/epoch", {"json": {"epoch": -1}}),
                    ("POST", "/_sim/advance", {"json": {"n": -6}}), ("PUT", "/_sim/faults", {"json": "bet9ja:418=1"}))
    assert [r.status_code for r in refused] == [400] * 4
    assert get(app, "/_sim/state").json()["epoch"] == 5


def test_drift_moves_the_epoch_with_wall_time(world):
    app = build_app(world, drift_every_s=0.1, clock=lambda: ANCHOR)
    time.sleep(0.35)
    assert get(app, "/_sim/state").json()["epoch"] >= 3


def test_launcher_runs_the_simulator_as_a_process_on_loopback_and_stops_it():
    with start_simulator(port=0, seed=3, events=20, anchor=ANCHOR - timedelta(days=1)) as sim:
        assert sim.running and sim.base_url.startswith("http://127.0.0.1:")
        assert sim.urls == {b: f"{sim.base_url}/{b}" for b in BOOKS}
        resp = httpx.get(sim.urls["betpawa"] + "/api/sportsbook/v3/categories/list/2", timeout=5)
        assert resp.status_code == 200 and "withRegions" in resp.json()
        assert sim.advance(2)["epoch"] == 2
        state = sim.state()
        assert state["seed"] == 3 and state["events"] == 20 and state["requests"]["betpawa"] == 1
        port = int(sim.base_url.rsplit(":", 1)[1])
    assert sim.proc.returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
