"""The readers–writer lock on ``<db>.lock``: readers share, a writer is exclusive, a writer
gets in while readers keep arriving (the scrape never stalls behind the app), and readers get
in while a writer keeps writing (the app never stalls behind the scrape)."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from engine.store.lock import LockReentryError, StoreLock


def test_readers_share_and_a_writer_waits_for_them(tmp_path):
    lock = StoreLock(tmp_path / "odds.duckdb")
    inside = threading.Event()
    release = threading.Event()
    wrote_at: list[float] = []

    def reader() -> None:
        with lock.shared():
            inside.set()
            release.wait(5)

    def writer() -> None:
        with lock.exclusive():
            wrote_at.append(time.monotonic())

    first = threading.Thread(target=reader)
    first.start()
    inside.wait(5)
    started = time.monotonic()
    with lock.shared():  # a second reader is not blocked by the first
        assert time.monotonic() - started < 0.5
    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.2)
    assert wrote_at == []  # the writer waits while a reader is inside
    release.set()
    first.join()
    w.join(5)
    assert len(wrote_at) == 1


def test_a_writer_is_not_starved_by_a_stream_of_readers(tmp_path):
    lock = StoreLock(tmp_path / "odds.duckdb")
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with lock.shared():
                time.sleep(0.02)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    time.sleep(0.1)
    waits = []
    for _ in range(5):
        started = time.monotonic()
        with lock.exclusive():
            waits.append(time.monotonic() - started)
        time.sleep(0.05)
    stop.set()
    for t in readers:
        t.join()

    # With overlapping readers there is never a moment without one; only the turnstile lets
    # the writer in, after the readers already inside (20 ms each) have left.
    assert max(waits) < 0.5


def write_back_to_back(db_path: str, seconds: float) -> None:
    """Another process writing without pause, each write busy for 20 ms under the lock."""
    lock = StoreLock(Path(db_path))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with lock.exclusive():
            busy_until = time.monotonic() + 0.02
            while time.monotonic() < busy_until:
                pass


def test_readers_are_not_starved_by_a_process_writing_back_to_back(tmp_path):
    db_path = tmp_path / "odds.duckdb"
    lock = StoreLock(db_path)
    writer = mp.get_context("spawn").Process(target=write_back_to_back, args=(str(db_path), 2.5))
    writer.start()
    while not lock.path.exists():
        time.sleep(0.01)
    time.sleep(0.5)
    waits = []
    for _ in range(20):
        started = time.monotonic()
        with lock.shared():
            waits.append(time.monotonic() - started)
        time.sleep(0.01)
    writer.join()

    # A reader waits for the write in progress (20 ms), not for the ones after it.
    assert max(waits) < 0.15


def test_taking_the_lock_twice_in_one_thread_fails_instead_of_hanging(tmp_path):
    lock = StoreLock(tmp_path / "odds.duckdb")
    with lock.shared(), pytest.raises(LockReentryError):
        with lock.exclusive():
            pass
    with lock.exclusive():  # released properly after the error
        pass
