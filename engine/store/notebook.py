"""The SQL notebook's own DuckDB connection: the connection itself enforces what the notebook may do.

A notebook query is arbitrary text from an analyst, so safety cannot rest on reading that text.
Each query gets a fresh connection, under the store's shared lock like every reader, set up so
DuckDB refuses by itself:

* writes to the store (``read_only=True``; ATTACH inherits it, so another file cannot be opened
  for writing either);
* any file or URL outside the store (``enable_external_access=false``: no ``read_csv('/etc/…')``,
  no COPY TO, no ATTACH of another file, no INSTALL/LOAD) — except the history archive folder,
  the one place the notebook is meant to read (``allowed_directories``), exposed as the view
  ``odds_history_archive``;
* changing any of that back (``lock_configuration=true``: ``SET enable_external_access`` fails).

DuckDB's allow-list does not tell reading from writing, so a COPY/EXPORT *into* the archive
folder would pass the connection; those two statement types are refused before running (the
page has download buttons for getting results out). Multiple statements are refused too, so a
result is always the one statement's.

DuckDB has no statement timeout: a timer ``interrupt()``s the connection after ``timeout_s``.
The shared lock is held while the query runs, so the timeout also bounds how long a notebook
query can hold back the scheduler's next write. Results are fetched through ``LIMIT row_limit+1``
on the statement's relation (pushed down for a SELECT), so a careless
``SELECT * FROM odds_history`` never pulls a hundred million rows into the app.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl

from engine.store.archive import archive_dir, archive_glob
from engine.store.db import Database, utc_frame

ROW_LIMIT = 10_000
TIMEOUT_S = 15.0
#: The notebook runs inside the app process: a runaway join must not take the app's memory.
MEMORY_LIMIT = "1GB"
ARCHIVE_VIEW = "odds_history_archive"

#: Statement types refused before running: they write files, which the archive allowance would let through.
_WRITES_FILES = {"COPY": "COPY writes files — use the download buttons",
                 "EXPORT": "EXPORT writes files — use the download buttons"}


class NotebookRefusal(ValueError):
    """A statement the notebook refuses before running it; the message says why."""


class NotebookTimeout(RuntimeError):
    """The statement ran past the notebook's time limit and was interrupted."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"stopped after {seconds:g} s (the notebook's time limit); "
                         "narrow the query (filter by event or time, aggregate, add a LIMIT)")
        self.seconds = seconds


@dataclass(frozen=True)
class NotebookResult:
    frame: pl.DataFrame
    truncated: bool  # more than ``row_limit`` rows: ``frame`` holds the first ``row_limit``


def single_statement(sql: str) -> str:
    """The one statement in ``sql`` (trailing semicolons allowed), or NotebookRefusal.

    DuckDB's own parser splits the text (no database is opened); a syntax error propagates as
    DuckDB's ``ParserException``."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise NotebookRefusal("the query is empty")
    statements = duckdb.extract_statements(text)
    if len(statements) != 1:
        raise NotebookRefusal(f"one statement at a time ({len(statements)} given)")
    kind = statements[0].type.name
    if kind in _WRITES_FILES:
        raise NotebookRefusal(f"{kind} is not allowed in the notebook ({_WRITES_FILES[kind]})")
    return text


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def connect(db: Database) -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked-down read-only connection to the store, under the shared lock, closed on exit."""
    db.ensure_schema()
    folder = archive_dir(db.path)
    has_archive = folder.is_dir() and any(folder.glob("date=*/*.parquet"))
    with db.lock.shared():
        conn = duckdb.connect(str(db.path), read_only=True, config={
            "autoinstall_known_extensions": False, "autoload_known_extensions": False,
            "memory_limit": MEMORY_LIMIT,
        })
        try:
            if has_archive:
                conn.execute("SET allowed_directories = $1", [[f"{folder}/"]])
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
            if has_archive:
                conn.execute(f"CREATE TEMP VIEW {ARCHIVE_VIEW} AS SELECT * FROM read_parquet("
                             f"{_literal(archive_glob(db.path))}, hive_partitioning = true, union_by_name = true)")
            yield conn
        finally:
            conn.close()


def run(db: Database, sql: str, row_limit: int = ROW_LIMIT, timeout_s: float = TIMEOUT_S) -> NotebookResult:
    """One notebook statement: at most ``row_limit`` rows, interrupted after ``timeout_s``."""
    text = single_statement(sql)
    with connect(db) as conn:
        timer = threading.Timer(timeout_s, conn.interrupt)
        timer.daemon = True
        timer.start()
        try:
            rel = conn.sql(text)
            frame = pl.DataFrame() if rel is None else rel.limit(row_limit + 1).pl()
        except duckdb.InterruptException:
            raise NotebookTimeout(timeout_s) from None
        finally:
            timer.cancel()
            rel = None  # a relation kept alive (say, by a traceback) would keep the file open
    return NotebookResult(utc_frame(frame.head(row_limit)), frame.height > row_limit)
