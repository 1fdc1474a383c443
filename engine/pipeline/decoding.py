"""Event payloads are decoded in a worker process, off the event loop.

Decoding (JSON + mapping, ~3 ms per book per event) is the largest CPU cost of a cycle; on
the event loop it delays every response behind it. A small process pool moves it to the other
core while the loop keeps requests flowing. A broken pool (a killed worker) costs nothing: the
payload is decoded inline and the pool rebuilt.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from engine.bookmakers._client import decode_event
from engine.bookmakers._models import DiscoveredEvent, FetchFailure, ParsedEvent

log = logging.getLogger("oddsdesk.decoding")
_pool: ProcessPoolExecutor | None = None
_workers = 0


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
        _pool = ProcessPoolExecutor(_workers, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


async def decode(book: str, content: bytes, event: DiscoveredEvent, attempts: int) -> ParsedEvent | FetchFailure:
    global _pool
    pool = _get_pool()
    if pool is not None:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, decode_event, book, content, event, attempts)
        except BrokenProcessPool:
            log.warning("decode worker died; decoding inline and restarting the pool")
            _pool = None
    return decode_event(book, content, event, attempts)


atexit.register(shutdown)
