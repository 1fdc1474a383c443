"""``Store``: the one door to the database for every process.

Each method is one unit of work — take the lock, open a connection, work, close, release — so
the scheduler, the app and the CLI can share one DuckDB file (DuckDB itself allows one writing
process or many reading ones, never both). Writes are one transaction each; reads are polars
frames from a read-only connection, with every timestamp aware UTC.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from engine.store import history, maintenance, queries, runs
from engine.store.batch import batch_frames, write_batch
from engine.store.db import Database, frame
from engine.store.types import BatchResult, BatchWrite


class Store:
    def __init__(self, db_path: str | Path) -> None:
        self._db = Database(db_path)

    @property
    def path(self) -> Path:
        return self._db.path

    # --- runs ---------------------------------------------------------------------------------

    def start_run(self, trigger: str, books: list[str], kind: str = "full") -> int:
        with self._db.write() as conn:
            return runs.start_run(conn, trigger, books, kind)

    def heartbeat(self, run_id: int) -> None:
        with self._db.write() as conn:
            runs.heartbeat(conn, run_id)

    def add_progress(self, run_id: int, kind: str, message: str = "", data: dict | None = None,
                     batches_done: int | None = None, batches_total: int | None = None) -> None:
        with self._db.write() as conn:
            runs.add_progress(conn, run_id, kind, message, data, batches_done, batches_total)

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set scrape_runs columns; dict/list values of the JSON columns are encoded."""
        with self._db.write() as conn:
            runs.update_run(conn, run_id, fields)

    def finish_run(self, run_id: int, status: str, summary: dict, error: str | None = None) -> None:
        with self._db.write() as conn:
            runs.finish_run(conn, run_id, status, summary, error)

    def fail_stale_runs(self, older_than_s: float, reason: str) -> list[int]:
        """RUNNING runs without a heartbeat for ``older_than_s`` become FAILED; their ids."""
        with self._db.write() as conn:
            return runs.fail_stale_runs(conn, older_than_s, reason)

    def fail_running_runs(self, reason: str) -> list[int]:
        """Start-up recovery: whatever is still RUNNING was left by a dead process."""
        with self._db.write() as conn:
            return runs.fail_running_runs(conn, reason)

    def store_batch(self, batch: BatchWrite) -> BatchResult:
        """All of the batch in one transaction, or nothing (the error propagates)."""
        started = time.perf_counter()
        frames = batch_frames(batch)
        with self._db.write() as conn:
            result = write_batch(conn, batch, frames)
        return dataclasses.replace(result, seconds=time.perf_counter() - started)

    def import_history(self, frame: pl.DataFrame) -> int:
        """Bulk history (``history.HISTORY_SCHEMA``; ``run_id`` optional) in one transaction,
        sorted for fast per-event reads; returns the rows added. See ``history.py``."""
        with self._db.write() as conn:
            return history.import_history(conn, frame)

    # --- settings and run requests ------------------------------------------------------------

    def get_settings(self) -> dict[str, Any]:
        with self._db.read() as conn:
            return runs.get_settings(conn)

    def put_settings(self, values: dict[str, Any]) -> None:
        with self._db.write() as conn:
            runs.put_settings(conn, values)

    def add_run_request(self, kind: str, payload: dict | None = None) -> int:
        with self._db.write() as conn:
            return runs.add_run_request(conn, kind, payload)

    def claim_run_requests(self) -> list[dict[str, Any]]:
        """PENDING requests, oldest first, now CLAIMED: each is handed out exactly once."""
        with self._db.write() as conn:
            return runs.claim_run_requests(conn)

    def finish_run_request(self, request_id: int, status: str, message: str = "", run_id: int | None = None) -> None:
        with self._db.write() as conn:
            runs.finish_run_request(conn, request_id, status, message, run_id)

    # --- maintenance --------------------------------------------------------------------------

    def cleanup(self, history_days: float, run_days: float, cluster: bool | None = None) -> dict[str, int]:
        """Delete what is past retention; then re-sort odds_history if its unsorted tail is
        large (``cluster=None``), always (``True``) or never (``False``). Returns row counts,
        with ``odds_history_clustered`` = rows rewritten (0 when it did not cluster)."""
        with self._db.write() as conn:
            counts = maintenance.delete_old(conn, history_days, run_days)
        if cluster is None:
            with self._db.read() as conn:
                cluster = maintenance.clustering_due(*maintenance.history_tail(conn))
        counts["odds_history_clustered"] = 0
        if cluster:
            with self._db.write() as conn:
                counts["odds_history_clustered"] = maintenance.cluster_history(conn)
        return counts

    # --- reads --------------------------------------------------------------------------------

    def runs(self, limit: int = 50) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.runs(conn, limit)

    def run(self, run_id: int) -> dict[str, Any] | None:
        """The run row with its JSON columns decoded, or None."""
        with self._db.read() as conn:
            return queries.run(conn, run_id)

    def run_progress(self, run_id: int) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.run_progress(conn, run_id)

    def event_status(self, run_id: int) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.event_status(conn, run_id)

    def run_requests(self, limit: int = 20) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.run_requests(conn, limit)

    def events(self) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.events(conn)

    def current_prices(self, sr_ids: Sequence[str] | None = None, market: str | None = None,
                       available_only: bool = False) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.current_prices(conn, sr_ids, market, available_only)

    def odds_history(self, sr_id: str, market: str | None = None, line: float | None = None) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.odds_history(conn, sr_id, market, line)

    def unmapped(self, limit: int | None = None) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.unmapped(conn, limit)

    def table_counts(self) -> dict[str, int]:
        with self._db.read() as conn:
            return queries.table_counts(conn)

    def db_bytes(self) -> int:
        """Size on disk of the database file and its WAL."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}.wal")) if p.exists())

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Any read-only SQL (``?`` or ``$name`` parameters) as a polars frame."""
        with self._db.read() as conn:
            return frame(conn, sql, params)
