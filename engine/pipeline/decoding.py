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
import os
import threading
import time
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
