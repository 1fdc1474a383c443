"""Cross-process readers–writer lock guarding the DuckDB file.

DuckDB lets one process open a file read-write *or* many processes open it read-only, never
both: a reader that tries while a writer has the file open gets "Could not set lock on file".
So every unit of work takes this lock first, and closes its connection before releasing it.

Three ``flock`` files beside the database:

* ``<db>.lock`` — the lock itself: readers hold it shared, a writer exclusive.
* ``<db>.writer.lock`` — a turnstile. A writer holds it for its whole transaction; a reader
  passes through it (exclusive for the instant it takes ``<db>.lock`` shared). A waiting
  writer therefore stops new readers at the turnstile and only waits for the readers already
  inside, so a stream of readers cannot starve it.
* ``<db>.readers.lock`` — readers hold it shared while they wait. ``flock`` has no queue, so a
  writer that releases and asks again at once would usually beat the readers it just woke; a
  writer first lets such waiting readers through (for at most ``MAX_YIELD_S``), so a busy
  writer cannot starve readers either. With nobody waiting it costs nothing.

``flock`` locks belong to an open file description, not to the process, so threads of one
process (Streamlit sessions) lock independently, and the kernel drops the lock if the process
dies. A thread that already holds the lock must not take it again (it would wait on itself):
that is a programming error and raises at once instead of hanging.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MAX_YIELD_S = 0.05
_held = threading.local()


class LockReentryError(RuntimeError):
    """A thread asked for the store lock while already holding it (would deadlock)."""


class StoreLock:
    def __init__(self, db_path: Path) -> None:
        self.path = Path(f"{db_path}.lock")
        self.turnstile_path = Path(f"{db_path}.writer.lock")
        self.waiting_path = Path(f"{db_path}.readers.lock")

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._guard(), _opened(self.path) as lock_fd:
            with _opened(self.waiting_path) as waiting_fd, _opened(self.turnstile_path) as gate_fd:
                fcntl.flock(waiting_fd, fcntl.LOCK_SH)
                fcntl.flock(gate_fd, fcntl.LOCK_EX)
                fcntl.flock(lock_fd, fcntl.LOCK_SH)
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._guard():
            self._yield_to_waiting_readers()
            with _opened(self.turnstile_path) as gate_fd, _opened(self.path) as lock_fd:
                fcntl.flock(gate_fd, fcntl.LOCK_EX)
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                yield

    def _yield_to_waiting_readers(self) -> None:
        deadline = time.monotonic() + MAX_YIELD_S
        with _opened(self.waiting_path) as fd:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        return
                    time.sleep(0.001)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        held: set[Path] = _held.__dict__.setdefault("paths", set())
        if self.path in held:
            raise LockReentryError(f"store lock {self.path} is already held by this thread")
        held.add(self.path)
        try:
            yield
        finally:
            held.discard(self.path)


@contextmanager
def _opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases its flock
