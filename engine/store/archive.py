"""Where history past the retention window is archived: date-partitioned Parquet beside the DB.

``<db>.archive/date=YYYY-MM-DD/*.parquet`` (Hive partitioning), one folder per UTC day of
``observed_at``. The SQL notebook reads it as ``odds_history_archive``; nothing else writes it.

``archive_history`` runs first in ``Store.cleanup``'s write transaction (when the
``archive_history`` setting is on), so the rows it writes are deleted in the same transaction
or not at all:

* Files are written to a staging folder (``.staging-*``, outside the glob) and renamed into
  their day's folder only once complete and synced: a reader never sees half a file.
* Any failure raises, the transaction rolls back and cleanup deletes nothing: rows are never
  deleted before they are safely on disk.
* Rows already archived are left out (anti-join on the price key and ``observed_at``, which
  identify a history row), so a second run — after a crash between rename and commit, or the
  same cleanup twice — writes nothing new.

DuckDB writes the files itself (``COPY … TO`` Parquet). PostgreSQL's rows are read an hour at a
time with ``db.frame`` and written from polars, one file per day per run, so memory follows an
hour of history, not the backlog. For PostgreSQL "beside the DB" means beside ``Database.path``,
its local anchor ``<local_dir>/<database>.postgres``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import sqlalchemy as sa

from engine.store.db import db_frame, duck, is_postgres, rows, to_db_time
from engine.store.history import HISTORY_SCHEMA

COLUMNS = tuple(HISTORY_SCHEMA)
#: A file's columns, as DuckDB's ``COPY`` writes them too (the ``date`` partition is the folder).
_SCHEMA = pl.DataFrame(schema=HISTORY_SCHEMA).to_arrow().schema
#: What identifies a history row.
_ROW_KEY = ["sr_id", "bookmaker", "market", "line", "outcome", "observed_at"]
_STAGING = ".staging-"


def archive_dir(db_path: str | Path) -> Path:
    path = Path(db_path).expanduser().resolve()
    return path.with_name(path.name + ".archive")


def archive_glob(db_path: str | Path) -> str:
    """The ``read_parquet`` pattern covering every archived file."""
    return str(archive_dir(db_path) / "date=*" / "*.parquet")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive_history(conn: sa.Connection, before: datetime, db_path: str | Path) -> int:
    """Write the odds_history rows observed before ``before`` that are not archived yet to the
    archive of the store at ``db_path`` (``Database.path``), in the caller's transaction; the
    number of rows written. Raises on any failure."""
    cutoff = to_db_time(before)
    count, oldest = rows(conn, "SELECT count(*), min(observed_at) FROM odds_history_data WHERE observed_at < ?",
                         [cutoff])[0]
    if not count:
        return 0
    root = archive_dir(db_path)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{_STAGING}*"):  # left by a run that died before moving its files
        shutil.rmtree(stale)
    done = sorted(root.glob("date=*/*.parquet"))
    stage = root / f"{_STAGING}{uuid.uuid4().hex}"
    write = _write_from_polars if is_postgres(conn) else _write_with_duckdb
    written = write(conn, oldest, cutoff, done, stage)
    if stage.exists():
        for part in sorted(stage.glob("date=*")):
            target = root / part.name
            target.mkdir(exist_ok=True)
            for file in sorted(part.glob("*.parquet")):
                _sync(file)
                os.replace(file, target / file.name)
            _sync(target)
        _sync(root)
        shutil.rmtree(stage)
    return written


def _write_with_duckdb(conn: sa.Connection, oldest: datetime, cutoff: datetime, done: list[Path], stage: Path) -> int:
    not_archived = ""
    if done:
        files = ", ".join(_literal(str(f)) for f in done)
        not_archived = f"""WHERE NOT EXISTS (
            SELECT 1 FROM read_parquet([{files}], hive_partitioning = false) a
            WHERE a.observed_at >= $oldest AND a.observed_at < $cutoff
              AND a.sr_id = h.sr_id AND a.bookmaker = h.bookmaker AND a.market = h.market
              AND a.line IS NOT DISTINCT FROM h.line AND a.outcome = h.outcome AND a.observed_at = h.observed_at)"""
    columns = ", ".join(COLUMNS)
    written = duck(conn).execute(f"""
        COPY (
            SELECT h.*, CAST(h.observed_at AS DATE) AS date
            FROM (SELECT {columns} FROM odds_history WHERE observed_at < $cutoff) h
            {not_archived}
            ORDER BY h.sr_id, h.observed_at, h.bookmaker, h.market, h.line, h.outcome
        ) TO {_literal(str(stage))} (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'history-{{uuid}}')
    """, {"cutoff": cutoff, "oldest": oldest} if done else {"cutoff": cutoff}).fetchall()[0][0]
    return int(written)


_HOUR = f"""SELECT {", ".join(COLUMNS)} FROM odds_history WHERE observed_at >= ? AND observed_at < ?
            ORDER BY sr_id, observed_at, bookmaker, market, line, outcome"""


def _write_from_polars(conn: sa.Connection, oldest: datetime, cutoff: datetime, done: list[Path],
                       stage: Path) -> int:
    """The rows an hour at a time, each day's into one staged file (``history-<uuid>.parquet``)."""
    hours = [h for (h,) in rows(conn, "SELECT DISTINCT date_trunc('hour', observed_at) FROM odds_history_data "
                                      "WHERE observed_at < ? ORDER BY 1", [cutoff])]
    archived = {}  # day folder → its files
    for file in done:
        archived.setdefault(file.parent.name, []).append(file)
    written = 0
    with ExitStack() as files:
        writers: dict[str, pq.ParquetWriter] = {}
        for hour in hours:
            stop = min(hour + timedelta(hours=1), cutoff)
            chunk = db_frame(conn, _HOUR, [hour, stop])
            chunk = chunk.cast(HISTORY_SCHEMA)  # type: ignore[arg-type]
            day = f"date={hour.date()}"
            if day in archived:
                before = pl.scan_parquet(archived[day]).select(_ROW_KEY).filter(
                    (pl.col("observed_at") >= max(hour, oldest)) & (pl.col("observed_at") < stop)).collect()
                chunk = chunk.join(before, on=_ROW_KEY, how="anti", nulls_equal=True, maintain_order="left")
            if chunk.is_empty():
                continue
            if day not in writers:
                (stage / day).mkdir(parents=True)
                writers[day] = files.enter_context(
                    pq.ParquetWriter(stage / day / f"history-{uuid.uuid4()}.parquet", _SCHEMA))
            writers[day].write_table(chunk.to_arrow())
            written += chunk.height
    return written


def archive_summary(db_path: str | Path) -> dict[str, Any]:
    """What the archive holds, from the files alone (no database access): per UTC day its files,
    rows (Parquet footers) and bytes, and the newest file's time."""
    days: dict[str, dict[str, int]] = {}
    newest = None
    for file in sorted(archive_dir(db_path).glob("date=*/*.parquet")):
        day = days.setdefault(file.parent.name.removeprefix("date="), {"files": 0, "rows": 0, "bytes": 0})
        stat = file.stat()
        day["files"] += 1
        day["rows"] += pq.read_metadata(file).num_rows
        day["bytes"] += stat.st_size
        newest = max(newest or stat.st_mtime, stat.st_mtime)
    return {
        "dir": str(archive_dir(db_path)),
        "days": days,
        "rows": sum(d["rows"] for d in days.values()),
        "bytes": sum(d["bytes"] for d in days.values()),
        "files": sum(d["files"] for d in days.values()),
        "newest_file_at": datetime.fromtimestamp(newest, UTC) if newest else None,
    }
