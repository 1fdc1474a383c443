"""One scheduler per store: a second one would fight the first for every batch.

DuckDB: an ``flock`` on ``<db>.scheduler.pid`` (the kernel drops it when the process dies), the
holder's pid written inside. PostgreSQL: a session-level advisory lock held by a connection of
its own for the scheduler's life (the server drops it when the connection goes), so schedulers
on different hosts see each other too; the holder is told by the connection's application_name.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

import sqlalchemy as sa

from engine.config import StoreUnreachable

#: Advisory lock key of the scheduler's lease (another than the writer's PG_WRITER_LOCK).
PG_SCHEDULER_LOCK = 0x0DD5DE5D


class FileInstanceLock:
    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".scheduler.pid")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")

    def acquire(self) -> bool:
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(str(os.getpid()))
        self._fh.flush()
        return True

    def holder(self) -> str:
        try:
            return f"pid {self.path.read_text().strip() or '?'}"
        except OSError:
            return "pid ?"


class PgInstanceLock:
    def __init__(self, url: sa.URL):
        self._url = url
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn = None  # the lease's connection, once acquired

    def _connect(self, **kwargs):
        import psycopg  # only a PostgreSQL store needs it

        try:
            return psycopg.connect(self._dsn, autocommit=True, **kwargs)
        except psycopg.OperationalError as exc:
            raise StoreUnreachable(self._url, exc) from exc

    def acquire(self) -> bool:
        me = f"oddsdesk scheduler pid {os.getpid()} on {socket.gethostname()}"[:63]
        conn = self._connect(application_name=me)
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (PG_SCHEDULER_LOCK,)).fetchone()
        if got and got[0]:
            self._conn = conn  # kept open: closing it would release the lease
            return True
        conn.close()
        return False

    def holder(self) -> str:
        with self._connect() as conn:
            row = conn.execute(
                """SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s AND l.database =
                   (SELECT oid FROM pg_database WHERE datname = current_database())""",
                (PG_SCHEDULER_LOCK & 0xFFFFFFFF,)).fetchone()
        return row[0] if row and row[0] else "?"
