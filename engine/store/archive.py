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
"""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa

from engine.store.db import duck, to_db_time

COLUMNS = ("sr_id", "bookmaker", "market", "line", "outcome", "odds", "available", "observed_at", "run_id")
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


def _db_path(conn: sa.Connection) -> Path:
    rows = duck(conn).execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return Path(rows[0][0])


def archive_history(conn: sa.Connection, before: datetime) -> int:
    """Write the odds_history rows observed before ``before`` that are not archived yet to the
    archive, in the caller's transaction; the number of rows written. Raises on any failure."""
    db = duck(conn)
    cutoff = to_db_time(before)
    count, oldest = db.execute("SELECT count(*), min(observed_at) FROM odds_history WHERE observed_at < ?",
                               [cutoff]).fetchall()[0]
    if not count:
        return 0
    root = archive_dir(_db_path(conn))
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f"{_STAGING}*"):  # left by a run that died before moving its files
        shutil.rmtree(stale)
    done = sorted(root.glob("date=*/*.parquet"))
    not_archived = ""
    if done:
        files = ", ".join(_literal(str(f)) for f in done)
        not_archived = f"""WHERE NOT EXISTS (
            SELECT 1 FROM read_parquet([{files}], hive_partitioning = false) a
            WHERE a.observed_at >= $oldest AND a.observed_at < $cutoff
              AND a.sr_id = h.sr_id AND a.bookmaker = h.bookmaker AND a.market = h.market
              AND a.line IS NOT DISTINCT FROM h.line AND a.outcome = h.outcome AND a.observed_at = h.observed_at)"""
    stage = root / f"{_STAGING}{uuid.uuid4().hex}"
    columns = ", ".join(COLUMNS)
    written = db.execute(f"""
        COPY (
            SELECT h.*, CAST(h.observed_at AS DATE) AS date
            FROM (SELECT {columns} FROM odds_history WHERE observed_at < $cutoff) h
            {not_archived}
            ORDER BY h.sr_id, h.observed_at, h.bookmaker, h.market, h.line, h.outcome
        ) TO {_literal(str(stage))} (FORMAT parquet, PARTITION_BY (date), FILENAME_PATTERN 'history-{{uuid}}')
    """, {"cutoff": cutoff, "oldest": oldest} if done else {"cutoff": cutoff}).fetchall()[0][0]
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
    return int(written)


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
