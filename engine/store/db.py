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

from engine.config import StoreUnreachable, masked, postgres_url
from engine.store import pg
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


def is_postgres(conn: sa.Connection) -> bool:
    """Whether this connection is to a PostgreSQL server (else it is the DuckDB file)."""
    return conn.dialect.name == "postgresql"


def duck(conn: sa.Connection) -> duckdb.DuckDBPyConnection:
    """The DuckDB handle under a SQLAlchemy connection (same transaction).

    DuckDB 2.0 refuses ``sql()`` while an ``execute()`` result is unread, and SQLAlchemy leaves
    them unread (a DML row count, the rest of a ``scalar()``), so those are finished first."""
    if is_postgres(conn):
        raise TypeError("duck() is DuckDB-only: use frame()/rows()/run()/register() on PostgreSQL")
    db = conn.connection.driver_connection
    db.complete()
    return db  # type: ignore[return-value]


def frame(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (through Arrow, no Python row loop), times in UTC."""
    return utc_frame(db_frame(conn, sql, params))


def db_frame(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
    """``frame`` with times as the database holds them (naive UTC), for the store's own writes."""
    if is_postgres(conn):
        return pg.frame(conn.connection.driver_connection, sql, _db_params(params))
    rel = duck(conn).sql(sql, params=_db_params(params))
    try:
        return pl.DataFrame() if rel is None else rel.pl()
    finally:
        del rel  # a relation kept alive (say, by a traceback) would keep the file open


def rows(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
    """A query's rows as tuples (``?`` or ``$name`` parameters, either backend)."""
    if is_postgres(conn):
        return pg.rows(conn.connection.driver_connection, sql, _db_params(params))
    return duck(conn).execute(sql, _db_params(params)).fetchall()


def run(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
    """A statement without a result (``?`` or ``$name`` parameters, either backend)."""
    if is_postgres(conn):
        pg.run(conn.connection.driver_connection, sql, _db_params(params))
    else:
        duck(conn).execute(sql, _db_params(params))


def affected(conn: sa.Connection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> int:
    """An INSERT/UPDATE/DELETE's row count (DuckDB returns it as a row, psycopg as ``rowcount``)."""
    if is_postgres(conn):
        return pg.affected(conn.connection.driver_connection, sql, _db_params(params))
    return int(duck(conn).execute(sql, _db_params(params)).fetchall()[0][0])


def register(conn: sa.Connection, name: str, data: pl.DataFrame | pa.Table) -> None:
    """Make a frame visible to SQL on this connection as ``name``: zero-copy Arrow on DuckDB,
    a temporary table filled by COPY (dropped at the transaction's end) on PostgreSQL."""
    if is_postgres(conn):
        pg.register(conn.connection.driver_connection, name,
                    data if isinstance(data, pl.DataFrame) else pl.from_arrow(data))  # type: ignore[arg-type]
    else:
        duck(conn).register(name, data.to_arrow() if isinstance(data, pl.DataFrame) else data)


def unregister(conn: sa.Connection, name: str) -> None:
    if is_postgres(conn):
        pg.run(conn.connection.driver_connection, f'DROP TABLE IF EXISTS pg_temp."{name}"', None)
    else:
        duck(conn).unregister(name)


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


def is_database_url(target: str | Path) -> bool:
    """A SQLAlchemy URL (``postgresql+psycopg://…``) rather than the path of a DuckDB file."""
    return isinstance(target, str) and "://" in target


#: The PostgreSQL advisory lock every write transaction takes: one writer at a time, as with
#: DuckDB's file lock, so the store's read-then-write batches (the price diff, the history
#: keys) see no other writer between their read and their write.
PG_WRITER_LOCK = 0x0DD5DE5C


class Database:
    """One store: a DuckDB file (its lock, a read-write and a read-only engine) or a PostgreSQL
    database (a small connection pool; MVCC for readers, an advisory lock for the writer), and
    its schema.

    ``path`` is the DuckDB file, or for PostgreSQL the local place its side files go by (the
    history archive): ``<local_dir>/<database>.postgres``."""

    def __init__(self, target: str | Path, local_dir: str | Path | None = None) -> None:
        self.postgres = is_database_url(target)
        self._ready = False
        if self.postgres:
            try:
                self.url = postgres_url(str(target))
            except ValueError as exc:
                raise ValueError(f"unsupported database URL: {exc}") from None
            self.path = (Path(local_dir or "data").expanduser() / f"{self.url.database}.postgres").resolve()
            self.lock: StoreLock | _NoLock = _NoLock()
            self._rw = sa.create_engine(self.url, pool_size=4, max_overflow=8, pool_pre_ping=True)
            sa.event.listen(self._rw, "connect", lambda dbapi_conn, _record: pg.configure(dbapi_conn))
            self._ro = self._rw
            return
        self.path = Path(target).expanduser().resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.url = sa.make_url(f"duckdb:///{self.path}")
        self.lock = StoreLock(self.path)
        self._rw = sa.create_engine(self.url, poolclass=NullPool, connect_args={"config": dict(WRITE_CONFIG)})
        self._ro = sa.create_engine(self.url, poolclass=NullPool, connect_args={"read_only": True})

    @property
    def label(self) -> str:
        """What to call this store in messages (no password)."""
        return masked(self.url) if self.postgres else str(self.path)

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """One write transaction: committed if the block returns, rolled back if it raises."""
        self.ensure_schema()
        with self._write() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.lock.exclusive(), self._connect(self._rw) as conn, conn.begin():
            if self.postgres:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_WRITER_LOCK})")
            yield conn

    def _connect(self, engine: sa.Engine) -> sa.Connection:
        """A connection of ``engine``; a PostgreSQL server that does not answer is StoreUnreachable
        (one clear line for the user, not a driver traceback)."""
        try:
            return engine.connect()
        except sa.exc.OperationalError as exc:
            if self.postgres:
                raise StoreUnreachable(self.url, exc) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read-only connection under the shared lock; several readers run at once."""
        self.ensure_schema()
        with self.lock.shared(), self._connect(self._ro) as conn:
            if self.postgres:  # one snapshot for the unit, and the server refuses writes in it
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    def size_bytes(self) -> int:
        """Size on disk: the DuckDB file and its WAL, or the PostgreSQL database."""
        if self.postgres:
            with self.read() as conn:
                return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar() or 0)
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}.wal")) if p.exists())

    def ensure_schema(self) -> None:
        """Create or upgrade the schema once per process; readers only take the write lock
        when the file is missing or older than this code."""
        if self._ready:
            return
        if self.postgres or self.path.exists():
            with self.lock.shared(), self._connect(self._ro) as conn:
                self._ready = current_version(conn) == len(STEPS)
        if not self._ready:
            with self._write() as conn:
                migrate(conn)
            self._ready = True


class _NoLock:
    """PostgreSQL needs no file lock: readers see snapshots, the writer takes an advisory lock."""

    @contextmanager
    def shared(self) -> Iterator[None]:
        yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        yield
