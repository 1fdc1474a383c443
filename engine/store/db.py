"""Short-lived DuckDB connections under the cross-process lock, and frames in and out.

Nothing here keeps a connection: ``write()`` and ``read()`` open one for a single unit of work
and close it *before* the lock is released, because DuckDB refuses to open a file read-only in
one process while another has it open read-write. SQLAlchemy Core (``NullPool``) runs the
schema and small statements; bulk frames go through the same connection's DuckDB handle as
Arrow.

Time: the database holds naive UTC (``TIMESTAMP``). Everything entering goes through
``to_db_time``; every frame leaving goes through ``utc_frame``, so callers only ever see aware
UTC and never have to guess.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from engine.store.lock import StoreLock
from engine.store.schema import STEPS, current_version, migrate


def utcnow() -> datetime:
    """Now as the database stores it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_db_time(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def from_db_time(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def utc_frame(frame: pl.DataFrame) -> pl.DataFrame:
    naive = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is None]
    return frame.with_columns(pl.col(naive).dt.replace_time_zone("UTC")) if naive else frame


def duck(conn: sa.Connection) -> duckdb.DuckDBPyConnection:
    """The DuckDB handle under a SQLAlchemy connection (same transaction).

    DuckDB 2.0 refuses ``sql()`` while an ``execute()`` result is unread, and SQLAlchemy leaves
    them unread (a DML row count, the rest of a ``scalar()``), so those are finished first."""
    db = conn.connection.driver_connection
    db.complete()
    return db  # type: ignore[return-value]


def frame(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (through Arrow, no Python row loop), times in UTC."""
    return utc_frame(db_frame(conn, sql, params))


def db_frame(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    """``frame`` with times as the database holds them (naive UTC), for the store's own writes."""
    rel = duck(conn).sql(sql, params=_db_params(params))
    try:
        return pl.DataFrame() if rel is None else rel.pl()
    finally:
        del rel  # a relation kept alive (say, by a traceback) would keep the file open


def register(conn: sa.Connection, name: str, data: pl.DataFrame | pa.Table) -> None:
    """Make a frame visible to SQL on this connection as ``name`` (zero-copy Arrow)."""
    duck(conn).register(name, data.to_arrow() if isinstance(data, pl.DataFrame) else data)


def _db_params(params: Sequence[Any] | dict[str, Any] | None) -> Any:
    if params is None:
        return None
    if isinstance(params, dict):
        return {k: _db_value(v) for k, v in params.items()}
    return [_db_value(v) for v in params]


def _db_value(value: Any) -> Any:
    return to_db_time(value) if isinstance(value, datetime) else value


#: DuckDB settings of every read-write connection. Measured on 2 cores (benchmarks/store.py):
#: * ``checkpoint_threshold`` 1 byte: the commit checkpoints at once and, for a big batch,
#:   skips writing the WAL first (DuckDB would checkpoint on close anyway; this way the data
#:   is written once). Letting the WAL grow instead does not pay: every later open, readers'
#:   included, replays it at ~3.5 ms per MB.
#: * ``threads`` 1: a batch is too small to gain from a second DuckDB thread, and the scrape
#:   process needs that core to parse the next batch while this one is stored.
#: No ``memory_limit``: the writer's DuckDB peak is the checkpoint's (~40 MB), and a limit low
#: enough to matter (32 MB) slowed new-price batches by a fifth.
WRITE_CONFIG: dict[str, str | int] = {"checkpoint_threshold": "1B", "threads": 1}


class Database:
    """One DuckDB file: its lock, its two engines (read-write, read-only) and its schema."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = StoreLock(self.path)
        url = f"duckdb:///{self.path}"
        self._rw = sa.create_engine(url, poolclass=NullPool, connect_args={"config": dict(WRITE_CONFIG)})
        self._ro = sa.create_engine(url, poolclass=NullPool, connect_args={"read_only": True})
        self._ready = False

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises."""
        self.ensure_schema()
        with self.lock.exclusive(), self._rw.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only connection under the shared lock; several readers run at once."""
        self.ensure_schema()
        with self.lock.shared(), self._ro.connect() as conn:
            yield conn

    def ensure_schema(self) -> None:
        """Create or upgrade the schema once per process; readers only take the write lock
        when the file is missing or older than this code."""
        if self._ready:
            return
        if self.path.exists():
            with self.lock.shared(), self._ro.connect() as conn:
                self._ready = current_version(conn) == len(STEPS)
        if not self._ready:
            with self.lock.exclusive(), self._rw.begin() as conn:
                migrate(conn)
            self._ready = True
