"""The simulator's HTTP server: the three books' real paths and JSON on one loopback port.

``http://HOST:PORT/betpawa``, ``/sportybet`` and ``/bet9ja`` are base URLs followed by each
book's real paths, so the scraper talks to the simulator exactly as to the real sites (only
``ODDSDESK_*_URL`` changes). One seeded world is served; its prices move by *epoch*, advanced
through the control API under ``/_sim/`` or by wall-clock drift; faults (faults.py) are drawn
per request. Rendering is pure (render_*.py); this module only routes, looks up and counts.

Control API::

    GET  /_sim/state     {seed, events, anchor, epoch, drift_every_s, faults, requests}
    POST /_sim/advance   {"n": 1}          epoch += n
    POST /_sim/epoch     {"epoch": k}      epoch = k
    PUT  /_sim/faults    FaultConfig JSON, or a JSON string in the faults.py grammar
    POST /_sim/truth     {"pairs": [{"book", "sr_id", "since"}]}  current prices + change times
    POST /_sim/plant     {"book", "sr_id", "market", "line", "outcome", "factor", "from_epoch"?}
                         that price × factor from that epoch on (default: now); DELETE clears all
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.bookmakers._models import Price
from engine.config import BOOKS
from engine.markets.catalogue import normalize_line
from engine.simulator import render_bet9ja, render_betpawa, render_sportybet
from engine.simulator.faults import Decision, Endpoint, FaultConfig, FaultInjector, FaultSpecError
from engine.simulator.noise import noise_for_event

if TYPE_CHECKING:
    from engine.simulator.world import SimEvent, SimTournament, World

Clock = Callable[[], datetime]
_TOURNAMENT_ID = {"betpawa": "betpawa_id", "sportybet": "sportybet_id", "bet9ja": "bet9ja_id"}
_BLOCK_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required!</title></head><body>"
    b"<h1>Sorry, you have been blocked</h1><p>You are unable to access this site.</p>"
    b"<p>Ray ID: 7f3a9c0e1b2d4e5f</p></body></html>"
)
_ERRORS = {
    "403": (403, b"<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1></body></html>",
            "text/html"),
    "429": (429, b'{"message":"Too Many Requests"}', "application/json"),
    "500": (500, b"Internal Server Error", "text/plain"),
    "503": (503, b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", "text/html"),
}


@dataclasses.dataclass(frozen=True)
class Plant:
    """One planted price (``POST /_sim/plant``): ``book`` quotes (market, line, outcome) of the
    event at ``factor`` × the world's odds (2 decimals, at least 1.01) from ``from_epoch`` on."""

    book: str
    sr_id: str
    market: str
    line: float | None
    outcome: str
    factor: float
    from_epoch: int

    @property
    def key(self) -> tuple[str, str, str, float | None, str]:
        return (self.book, self.sr_id, self.market, self.line, self.outcome)

    @classmethod
    def parse(cls, body: Any, epoch: int) -> Plant:
        if not isinstance(body, dict):
            raise TypeError("expected a JSON object")
        if body.get("book") not in BOOKS:
            raise ValueError(f"book must be one of {', '.join(BOOKS)}, got {body.get('book')!r}")
        factor = float(body["factor"])
        if not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"factor must be a positive number, got {body['factor']!r}")
        line = body.get("line")
        return cls(body["book"], str(body["sr_id"]), str(body["market"]),
                   None if line is None else normalize_line(float(line)), str(body["outcome"]), factor,
                   int(body.get("from_epoch", epoch)))


def _body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_DETAIL = {
    "betpawa": render_betpawa.event_detail,
    "sportybet": render_sportybet.event_detail,
    "bet9ja": render_bet9ja.event_detail,
}


class Simulator:
    """The running simulator's state: the world and its lookups, epoch, faults, request counts."""

    def __init__(self, world: World, faults: FaultConfig | None = None, drift_every_s: float | None = None,
                 clock: Clock | None = None):
        self.world = world
        self.injector = FaultInjector(faults)
        self.drift_every_s = drift_every_s
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.started = time.monotonic()
        self.wall_started = time.time()
        self.offset = 0
        self.segments: list[tuple[float, int]] = [(self.started, 0)]  # truth: (monotonic, offset) per set_epoch
        self.requests = {book: 0 for book in BOOKS}
        self._cache: dict[tuple[str, ...], Any] = {}  # this epoch's detail bodies and prices
        self._cache_epoch = -1
        self.plants: dict[tuple[str, str, str, float | None, str], Plant] = {}  # plants: see plant()
        self.stopping: Callable[[], bool] = lambda: False  # serve() points this at uvicorn's exit flag
        self.events: dict[str, dict[str, SimEvent]] = {book: {} for book in BOOKS}
        self.schedule: dict[str, dict[str, list[SimEvent]]] = {book: {} for book in BOOKS}
        self.tournaments: dict[str, dict[str, SimTournament]] = {
            book: {getattr(t, _TOURNAMENT_ID[book]): t for t in world.tournaments} for book in BOOKS}
        for event in sorted(world.events, key=lambda e: (e.kickoff, e.sr_id)):
            for book in event.books:
                self.events[book][event.book_ids[book]] = event
                self.schedule[book].setdefault(event.tournament.key, []).append(event)

    # epoch ----------------------------------------------------------------------------------

    def _drift(self) -> int:
        if not self.drift_every_s:
            return 0
        return math.floor((time.monotonic() - self.started) / self.drift_every_s)

    def epoch(self) -> int:
        return self._drift() + self.offset

    def set_epoch(self, epoch: int) -> None:
        self.offset = epoch - self._drift()
        self.segments.append((time.monotonic(), self.offset))

    # truth: when each price last changed, for the freshness benchmark ----------------------

    def epoch_at(self, mono: float) -> int:
        """The epoch that was current at monotonic time ``mono`` (drift plus the manual offset then)."""
        offset = next(o for t, o in reversed(self.segments) if t <= mono) if mono >= self.started else 0
        drift = math.floor((mono - self.started) / self.drift_every_s + 1e-9) if self.drift_every_s else 0
        return max(0, drift + offset)

    def transitions(self, since: float, until: float) -> list[tuple[float, int, int]]:
        """Epoch changes in monotonic (since, until]: (time, epoch before, epoch after)."""
        since = max(since, self.started)
        times = {t for t, _ in self.segments if since < t <= until}
        if self.drift_every_s:
            first = math.floor((since - self.started) / self.drift_every_s) + 1
            last = math.floor((until - self.started) / self.drift_every_s)
            times.update(self.started + k * self.drift_every_s for k in range(first, last + 1))
        out, before = [], self.epoch_at(since)
        for t in sorted(times):
            after = self.epoch_at(t)
            if after != before:
                out.append((t, before, after))
                before = after
        return out

    def truth(self, book: str, sr_id: str, since: float | None) -> dict[str, Any]:
        """What ``book`` quotes now for the event, and per price (market, line, outcome, odds,
        available, first, last): the wall-clock times (unix s) of its first and last change
        after ``since`` (unix s), null when it has not changed since then."""
        mono_now = time.monotonic()
        epoch = self.epoch_at(mono_now)
        quotes = self.world.quotes(book, sr_id, epoch)
        first: dict[tuple, float] = {}
        last: dict[tuple, float] = {}
        if since is not None:
            for t, before, after in self.transitions(since - self.wall_started + self.started, mono_now):
                if after == before + 1:
                    keys = self.world.changed_prices(book, sr_id, after)
                else:
                    old = {(p.market, p.line, p.outcome): (p.odds, p.available)
                           for p in self.world.quotes(book, sr_id, before)}
                    keys = {(p.market, p.line, p.outcome) for p in self.world.quotes(book, sr_id, after)
                            if old.get((p.market, p.line, p.outcome)) != (p.odds, p.available)}
                at = self.wall_started + (t - self.started)
                for key in keys:
                    first.setdefault(key, at)
                    last[key] = at
        return {"book": book, "sr_id": sr_id, "epoch": epoch, "prices": [
            [p.market, p.line, p.outcome, p.odds, p.available, first.get(k), last.get(k)]
            for p in quotes for k in [(p.market, p.line, p.outcome)]]}

    # lookups --------------------------------------------------------------------------------

    def upcoming(self, book: str, tournament: SimTournament) -> list[SimEvent]:
        """Events of a tournament the book lists now: kickoff still ahead."""
        now = self.clock()
        return [e for e in self.schedule[book].get(tournament.key, []) if e.kickoff > now]

    def tree(self, book: str) -> list[tuple[SimTournament, int]]:
        counts = [(t, len(self.upcoming(book, t))) for t in self.world.tournaments]
        return [(t, n) for t, n in counts if n]

    def _fresh_cache(self) -> int:
        """The current epoch, with what was cached for another epoch dropped."""
        epoch = self.epoch()
        if epoch != self._cache_epoch:
            self._cache.clear()
            self._cache_epoch = epoch
        return epoch

    def quotes(self, book: str, event: SimEvent) -> list[Price]:
        """The event's prices this epoch, computed once: list pages show them for every listed
        event, and computing them is most of a list page's cost (the scraper is measured, not us)."""
        epoch = self._fresh_cache()
        key = ("prices", book, event.sr_id)
        prices = self._cache.get(key)
        if prices is None:
            prices = self._cache[key] = self.planted(book, event.sr_id, epoch)
        return prices

    def detail(self, book: str, event: SimEvent) -> bytes:
        """An event-detail body, rendered once per epoch: the real books serve cached pages too,
        and on a shared 2-core machine the simulator's CPU must not be billed to the scraper."""
        self._fresh_cache()
        key = (book, event.sr_id)
        body = self._cache.get(key)
        if body is None:
            prices = self.quotes(book, event)
            noise = noise_for_event(book, event.sr_id, prices)
            body = self._cache[key] = _body(_DETAIL[book](event, prices, noise))
        return body

    def warm(self) -> int:
        """Render every event detail (and so the prices list pages show) of the current epoch
        ahead of time (benchmarks call this)."""
        n = 0
        for book in BOOKS:
            for event in self.events[book].values():
                self.detail(book, event)
                n += 1
        return n

    # plants: a mispricing or a move planted on one price, for integration tests --------------

    def plant(self, plant: Plant) -> None:
        """From ``plant.from_epoch`` on, the book quotes that price × ``plant.factor``."""
        quoted = {(p.market, p.line, p.outcome) for p in self.world.quotes(plant.book, plant.sr_id, plant.from_epoch)}
        if plant.key[2:] not in quoted:
            raise ValueError(f"{plant.book} does not quote {plant.key[2:]} for {plant.sr_id}")
        self.plants[plant.key] = plant
        self._cache.clear()

    def planted(self, book: str, sr_id: str, epoch: int) -> list[Price]:
        """The world's quotes with the plants in force at ``epoch`` applied."""
        prices = self.world.quotes(book, sr_id, epoch)
        if not self.plants:
            return prices
        out = []
        for p in prices:
            plant = self.plants.get((book, sr_id, p.market, p.line, p.outcome))
            if plant is not None and epoch >= plant.from_epoch:
                p = dataclasses.replace(p, odds=max(1.01, round(p.odds * plant.factor, 2)))
            out.append(p)
        return out

    def state(self) -> dict[str, Any]:
        return {
            "seed": self.world.seed,
            "events": len(self.world.events),
            "anchor": self.world.anchor.isoformat(),
            "epoch": self.epoch(),
            "drift_every_s": self.drift_every_s,
            "faults": self.injector.config.to_json(),
            "requests": dict(self.requests),
        }


async def _hang(request: Request, seconds: float, stopping: Callable[[], bool]) -> None:
    """Hold the request like a stuck upstream: until the client gives up, ``seconds`` pass, or
    the server is stopping (so a hung request never holds up a clean shutdown)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stopping() or await request.is_disconnected():
            return
        await asyncio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


async def _answer(request: Request, sim: Simulator, book: str, endpoint: Endpoint,
                  render: Callable[[], tuple[int, Any]]) -> Response:
    """Count the request, apply this request's fault decision, else serve the rendered body."""
    sim.requests[book] += 1
    decision: Decision = sim.injector.decide(book, endpoint)
    if decision.delay_s:
        await asyncio.sleep(decision.delay_s)
    if decision.fault == "timeout":
        await _hang(request, decision.settings.hang_s, sim.stopping)
        return Response(b"", status_code=504)
    if decision.fault in _ERRORS:
        status, content, media = _ERRORS[decision.fault]
        headers = {"Retry-After": str(decision.settings.retry_after_s)} if decision.fault == "429" else None
        return Response(content, status_code=status, media_type=media, headers=headers)
    status, payload = render()
    body = payload if isinstance(payload, bytes) else _body(payload)
    if decision.fault == "truncated":
        body = body[: max(1, int(len(body) * (0.1 + 0.8 * decision.cut)))]
    elif decision.fault == "malformed":
        if decision.cut < 0.5:
            return Response(_BLOCK_PAGE, status_code=200, media_type="text/html")
        body = b"\x00\x1f<!-- upstream error -->" + body[: len(body) // 3]
    return Response(body, status_code=status, media_type="application/json")


def _bad_request(message: str) -> Response:
    return JSONResponse({"error": "BAD_REQUEST", "message": message}, status_code=400)


# BetPawa ----------------------------------------------------------------------------------

def _betpawa_routes(sim: Simulator) -> list[Route]:
    book = "betpawa"

    async def categories(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            tree = sim.tree(book) if request.path_params["category"] == "2" else []
            return 200, render_betpawa.categories(tree)
        return await _answer(request, sim, book, "tree", render)

    async def by_queries(request: Request) -> Response:
        try:
            queries = json.loads(request.query_params["q"])["queries"]
            if not isinstance(queries, list):
                raise TypeError("queries must be a list")
        except (KeyError, ValueError, TypeError) as exc:
            return _bad_request(f"q: {exc}")

        def render() -> tuple[int, Any]:
            return 200, render_betpawa.events_lists([_betpawa_query(sim, q) for q in queries])
        return await _answer(request, sim, book, "list", render)

    async def event(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            event_id = request.path_params["event_id"]
            ev = sim.events[book].get(event_id)
            if ev is None:
                return 404, render_betpawa.not_found(event_id)
            return 200, sim.detail(book, ev)
        return await _answer(request, sim, book, "detail", render)

    base = "/betpawa/api/sportsbook/v3"
    return [
        Route(base + "/categories/list/{category}", categories),
        Route(base + "/events/lists/by-queries", by_queries),
        Route(base + "/events/{event_id}", event),
    ]


def _betpawa_query(sim: Simulator, entry: Any) -> list[SimEvent]:
    """Events one by-queries entry asks for: upcoming, football, its competitions, skip/take."""
    if not isinstance(entry, dict):
        return []
    query = entry.get("query") or {}
    if query.get("eventType", "UPCOMING") != "UPCOMING" or "2" not in [str(c) for c in query.get("categories", ["2"])]:
        return []
    wanted = (query.get("zones") or {}).get("competitions")
    tournaments = sim.tournaments["betpawa"]
    chosen = [tournaments[str(c)] for c in wanted if str(c) in tournaments] if wanted else list(tournaments.values())
    events = sorted((e for t in chosen for e in sim.upcoming("betpawa", t)), key=lambda e: (e.kickoff, e.sr_id))
    skip, take = max(0, int(entry.get("skip", 0))), max(0, int(entry.get("take", 100)))
    return events[skip: skip + take]


# SportyBet --------------------------------------------------------------------------------

def _sportybet_routes(sim: Simulator) -> list[Route]:
    book = "sportybet"

    async def sport_list(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            tree = sim.tree(book) if request.query_params.get("sportId", "sr:sport:1") == "sr:sport:1" else []
            return 200, render_sportybet.sport_tree(tree)
        return await _answer(request, sim, book, "tree", render)

    async def pc_events(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            if not isinstance(body, list) or not all(isinstance(x, dict) for x in body):
                raise TypeError("body must be a JSON array of objects")
        except (ValueError, TypeError) as exc:
            return JSONResponse(render_sportybet.bad_request(str(exc)), status_code=400)

        def render() -> tuple[int, Any]:
            return 200, render_sportybet.pc_events([_sportybet_block(sim, x) for x in body])
        return await _answer(request, sim, book, "list", render)

    async def event(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            ev = sim.events[book].get(request.query_params.get("eventId", ""))
            if ev is None:
                return 200, render_sportybet.not_found()
            return 200, sim.detail(book, ev)
        return await _answer(request, sim, book, "detail", render)

    base = "/sportybet/api/ng/factsCenter"
    return [
        Route(base + "/popularAndSportList", sport_list),
        Route(base + "/pcEvents", pc_events, methods=["POST"]),
        Route(base + "/event", event),
    ]


def _flatten(value: Any) -> list[str]:
    if isinstance(value, list):
        return [x for v in value for x in _flatten(v)]
    return [str(value)] if value is not None else []


def _sportybet_block(sim: Simulator, entry: dict[str, Any]) -> dict[str, Any]:
    book = "sportybet"
    tournaments = [sim.tournaments[book][t] for t in _flatten(entry.get("tournamentId")) if t in sim.tournaments[book]]
    market_ids = str(entry.get("marketId") or "")
    only = {m.strip() for m in market_ids.split(",") if m.strip()} or None
    events = [e for t in tournaments for e in sim.upcoming(book, t)]
    items = [(e, sim.quotes(book, e)) for e in events]
    return render_sportybet.events_block(tournaments[0] if tournaments else None, items, only)


# Bet9ja -----------------------------------------------------------------------------------

def _bet9ja_routes(sim: Simulator) -> list[Route]:
    book = "bet9ja"

    async def get_sports(request: Request) -> Response:
        return await _answer(request, sim, book, "tree", lambda: (200, render_bet9ja.sports(sim.tree(book))))

    async def events_in_group(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            tournament = sim.tournaments[book].get(request.query_params.get("GROUPID", ""))
            events = sim.upcoming(book, tournament) if tournament else []
            return 200, render_bet9ja.events_in_group([(e, sim.quotes(book, e)) for e in events])
        return await _answer(request, sim, book, "list", render)

    async def get_event(request: Request) -> Response:
        def render() -> tuple[int, Any]:
            ev = sim.events[book].get(request.query_params.get("EVENTID", ""))
            if ev is None:
                return 200, render_bet9ja.not_found()
            return 200, sim.detail(book, ev)
        return await _answer(request, sim, book, "detail", render)

    base = "/bet9ja/desktop/feapi/PalimpsestAjax"
    return [
        Route(base + "/GetSports", get_sports),
        Route(base + "/GetEventsInGroupV2", events_in_group),
        Route(base + "/GetEvent", get_event),
    ]


# Control API ------------------------------------------------------------------------------

async def _json_body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw.strip() else {}


def _control_routes(sim: Simulator) -> list[Route]:
    async def state(request: Request) -> Response:
        return JSONResponse(sim.state())

    async def advance(request: Request) -> Response:
        try:
            n = int((await _json_body(request)).get("n", 1))
        except (ValueError, TypeError, AttributeError) as exc:
            return _bad_request(f"expected {{\"n\": int}}: {exc}")
        if sim.epoch() + n < 0:
            return _bad_request("the epoch cannot go below 0")
        sim.set_epoch(sim.epoch() + n)
        return JSONResponse(sim.state())

    async def set_epoch(request: Request) -> Response:
        try:
            epoch = int((await _json_body(request))["epoch"])
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _bad_request(f"expected {{\"epoch\": int}}: {exc}")
        if epoch < 0:
            return _bad_request("the epoch cannot go below 0")
        sim.set_epoch(epoch)
        return JSONResponse(sim.state())

    async def warm(request: Request) -> Response:
        rendered = await asyncio.to_thread(sim.warm)
        return JSONResponse({"rendered": rendered, "epoch": sim.epoch()})

    async def truth(request: Request) -> Response:
        try:
            pairs = [(str(p["book"]), str(p["sr_id"]), None if p.get("since") is None else float(p["since"]))
                     for p in (await _json_body(request))["pairs"]]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _bad_request(f'expected {{"pairs": [{{"book", "sr_id", "since"}}]}}: {exc}')
        if unknown := {b for b, _, _ in pairs} - set(BOOKS):
            return _bad_request(f"unknown book(s): {', '.join(sorted(unknown))}")
        try:
            found = await asyncio.to_thread(lambda: [sim.truth(b, s, since) for b, s, since in pairs])
        except KeyError as exc:
            return _bad_request(f"unknown event {exc}")
        return JSONResponse({"now": time.time(), "epoch": sim.epoch(), "pairs": found})

    async def plant(request: Request) -> Response:
        if request.method == "DELETE":
            sim.plants.clear()
            sim._cache.clear()
            return JSONResponse({"plants": []})
        try:
            body = await _json_body(request)
            sim.plant(Plant.parse(body, sim.epoch()))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return _bad_request(f"plant: {exc}")
        return JSONResponse({"plants": [dataclasses.asdict(p) for p in sim.plants.values()]})

    async def faults(request: Request) -> Response:
        try:
            body = await _json_body(request)
            config = FaultConfig.parse(body) if isinstance(body, str) else FaultConfig.model_validate(body)
        except (ValueError, FaultSpecError) as exc:
            return _bad_request(str(exc))
        sim.injector.configure(config)
        return JSONResponse(sim.state())

    return [
        Route("/_sim/state", state),
        Route("/_sim/advance", advance, methods=["POST"]),
        Route("/_sim/epoch", set_epoch, methods=["POST"]),
        Route("/_sim/faults", faults, methods=["PUT"]),
        Route("/_sim/warm", warm, methods=["POST"]),
        Route("/_sim/truth", truth, methods=["POST"]),
        Route("/_sim/plant", plant, methods=["POST", "DELETE"]),
    ]


def build_app(world: World, faults: FaultConfig | None = None, *, drift_every_s: float | None = None,
              clock: Clock | None = None) -> Starlette:
    """The simulator as an ASGI app, for uvicorn or ``httpx.ASGITransport`` in tests.

    ``clock`` decides which kickoffs have passed (default: the wall clock, UTC).
    """
    sim = Simulator(world, faults, drift_every_s=drift_every_s, clock=clock)
    app = Starlette(routes=[*_betpawa_routes(sim), *_sportybet_routes(sim), *_bet9ja_routes(sim),
                            *_control_routes(sim)])
    app.state.sim = sim
    return app


def book_urls(base_url: str) -> dict[str, str]:
    return {book: f"{base_url}/{book}" for book in BOOKS}


def serve(port: int, seed: int = 1, events: int = 300, faults: FaultConfig | None = None,
          host: str = "127.0.0.1", drift_every_s: float | None = None, anchor: datetime | None = None) -> None:
    """Serve the simulated books until SIGINT/SIGTERM; prints the three base URLs first.

    Port 0 binds a free port; the printed URLs carry the real one (process.py reads them).
    """
    import uvicorn

    from engine.simulator.world import build_world

    app = build_app(build_world(seed=seed, events=events, anchor=anchor), faults, drift_every_s=drift_every_s)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=2))
    app.state.sim.stopping = lambda: server.should_exit
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it Nagle holds a small body behind the client's delayed ACK (+40 ms a response).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    for book, url in book_urls(f"http://{host}:{bound}").items():
        print(f"{book:<10}{url}", flush=True)
    if threading.current_thread() is threading.main_thread():
        # uvicorn re-raises the signal after its graceful shutdown; make SIGTERM end like Ctrl-C.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.simulator.server", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8601, help="0 = any free port (printed)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--events", type=int, default=300)
    p.add_argument("--faults", default="", help='e.g. "all:latency=150,jitter=50;bet9ja:429=0.1,timeout=0.02"')
    p.add_argument("--drift-every", type=float, default=None, help="epoch += 1 every N seconds")
    p.add_argument("--anchor", default=None, help="ISO datetime the world's kickoffs are laid out from")
    args = p.parse_args(argv)
    try:
        faults = FaultConfig.parse(args.faults) if args.faults else None
        anchor = datetime.fromisoformat(args.anchor) if args.anchor else None
    except ValueError as exc:
        p.error(str(exc))
    if anchor is not None and anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=UTC)
    serve(args.port, seed=args.seed, events=args.events, faults=faults, host=args.host,
          drift_every_s=args.drift_every, anchor=anchor)
    return 0


if __name__ == "__main__":
    sys.exit(main())
