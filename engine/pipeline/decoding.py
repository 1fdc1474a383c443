"""Event payloads are decoded in a worker process, off the event loop, into batch-ready pieces.

Decoding (JSON + mapping, ~2 ms per book per event) is the largest CPU cost of a cycle; on
the event loop it delays every response behind it. A small process pool moves it to the other
core while the loop keeps requests flowing. A broken pool (a killed worker) costs nothing: the
payload is decoded inline and the pool rebuilt.

What comes back is shaped for the batch, not the parser's ``ParsedEvent``: the prices as a
frame (pickled as Arrow IPC) and the unmapped entries already counted. Unpickling ~300 ``Price``
objects per event cost the event loop's process 0.5 ms an event (measured), as much as its
whole share of the HTTP work, and the batch then copied them once more into columns.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from engine.bookmakers._client import decode_event
from engine.bookmakers._models import DiscoveredEvent, FetchFailure, ParsedEvent
from engine.store.types import PRICE_SCHEMA

log = logging.getLogger("oddsdesk.decoding")
_pool: ProcessPoolExecutor | None = None
_workers = 0


@dataclass(frozen=True)
class Decoded:
    """One book's event detail as the batch needs it."""

    kickoff: datetime | None
    country: str
    tournament: str
    home: str
    away: str
    prices: pl.DataFrame  # PRICE_SCHEMA, sr_id and bookmaker those of the listing
    raw_markets: int  # market instances in the payload
    mapped_markets: int  # of which gave canonical prices
    unmapped: tuple[tuple[str, str, str, str, int], ...]  # (market_id, name, reason, first detail, count)

    @property
    def unmapped_count(self) -> int:
        return sum(u[4] for u in self.unmapped)


def shape(parsed: ParsedEvent, event: DiscoveredEvent) -> Decoded:
    """A parsed event as ``Decoded``; pure, so it runs in the worker next to the parser."""
    ps = parsed.prices
    n = len(ps)
    prices = pl.DataFrame(
        {"sr_id": [event.sr_id] * n, "bookmaker": [parsed.book] * n, "market": [p.market for p in ps],
         "line": [p.line for p in ps], "outcome": [p.outcome for p in ps], "odds": [p.odds for p in ps],
         "available": [p.available for p in ps]},
        schema=PRICE_SCHEMA,
    )
    counts: Counter = Counter()
    first: dict[tuple[str, str, str], str] = {}
    for u in parsed.unmapped:
        key = (u.market_id, u.name, u.reason)
        counts[key] += 1
        first.setdefault(key, u.detail)
    return Decoded(
        kickoff=parsed.kickoff, country=parsed.country, tournament=parsed.tournament, home=parsed.home,
        away=parsed.away, prices=prices, raw_markets=parsed.raw_markets,
        mapped_markets=len({(p.market, p.line) for p in ps}),
        unmapped=tuple((*key, first[key], n) for key, n in counts.items()),
    )


def decode_shaped(book: str, content: bytes, event: DiscoveredEvent, attempts: int) -> Decoded | FetchFailure:
    """Detail body → ``Decoded`` or the typed failure (what the worker runs)."""
    res = decode_event(book, content, event, attempts)
    return res if isinstance(res, FetchFailure) else shape(res, event)


def configure(workers: int) -> None:
    """Use ``workers`` decode processes from now on (0 = inline); the pool outlives cycles."""
    global _workers
    if workers != _workers:
        shutdown()
        _workers = workers


def _get_pool() -> ProcessPoolExecutor | None:
    global _pool
    if _workers and _pool is None:
        # spawn: the scheduler process has threads, and forking those is unsafe.
        _pool = ProcessPoolExecutor(_workers, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_exit_with_parent, initargs=(os.getpid(),))
    return _pool


def _exit_with_parent(parent: int) -> None:
    """In the worker: leave when the scheduler dies, even by SIGKILL (no orphans left behind)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


async def decode(book: str, content: bytes, event: DiscoveredEvent, attempts: int) -> Decoded | FetchFailure:
    global _pool
    pool = _get_pool()
    if pool is not None:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, decode_shaped, book, content, event,
                                                                    attempts)
        except BrokenProcessPool:
            log.warning("decode worker died; decoding inline and restarting the pool")
            _pool = None
    return decode_shaped(book, content, event, attempts)


atexit.register(shutdown)
