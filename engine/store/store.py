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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from engine.store import history, maintenance, notebook, queries, rollups, runs
from engine.store.alerts import acknowledge, count_unacknowledged, list_alerts
from engine.store.archive import archive_history
from engine.store.batch import batch_frames, write_batch
from engine.store.db import Database, frame, utcnow
from engine.store.instance import FileInstanceLock, PgInstanceLock
from engine.store.types import BatchResult, BatchWrite


class Store:
    def __init__(self, target: str | Path, local_dir: str | Path | None = None) -> None:
        """``target``: a DuckDB file's path, or a ``postgresql+psycopg://`` URL (``local_dir``:
        where that store's local side files, such as the history archive, go)."""
        self._db = Database(target, local_dir)

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        """The store the settings name: ``database_url`` if set, else the DuckDB file ``db_path``."""
        if settings.database_url:
            return cls(settings.database_url, local_dir=Path(settings.db_path).expanduser().parent)
        return cls(settings.db_path)

    def instance_lock(self) -> FileInstanceLock | PgInstanceLock:
        """The scheduler's one-per-store lease (``instance.py``): ``acquire()`` it, or tell its ``holder()``."""
        return PgInstanceLock(self._db.url) if self._db.postgres else FileInstanceLock(self._db.path)

    @property
    def postgres(self) -> bool:
        return self._db.postgres

    @property
    def label(self) -> str:
        """The DuckDB file or the PostgreSQL URL (without its password), for messages."""
        return self._db.label

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
        sorted for fast per-event reads; returns the rows added. See ``history.py``.
        Margin rollups from the import's earliest row on are dropped with it (``rollups.py``)."""
        rows = history.history_frame(frame)
        with self._db.write() as conn:
            added = history.import_history(conn, rows)
            if added:  # rollups: the hours this history changes are rolled up again
                rollups.invalidate(conn, rows["observed_at"].min())  # type: ignore[arg-type]
            return added

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

    def cleanup(self, history_days: float, run_days: float, cluster: bool | None = None,
                archive: bool = False) -> dict[str, int]:
        """Delete what is past retention; then re-sort odds_history if its unsorted tail is
        large (``cluster=None``), always (``True``) or never (``False``). Returns row counts,
        with ``odds_history_clustered`` = rows rewritten (0 when it did not cluster).

        archive: with ``archive``, the history to delete is first written to Parquet in the same
        transaction (``archive.archive_history``; ``odds_history_archived`` = rows written); if
        that fails, it raises and nothing is deleted."""
        now = utcnow()
        with self._db.write() as conn:
            archived = archive_history(conn, now - timedelta(days=history_days), self.path) if archive else None
            counts = maintenance.delete_old(conn, history_days, run_days, now=now)
        if archived is not None:
            counts["odds_history_archived"] = archived
        if cluster is None and self._db.postgres:
            # PostgreSQL reads one event's history through its index, and history in arrival
            # order keeps the BRIN index on time tight; a re-sort would only stall the writer.
            cluster = False
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

    # tiers: the refresh coordinator's reads
    def tier_listings(self, now: datetime) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.tier_listings(conn, now)

    def discovery_runs(self, limit: int = 20) -> pl.DataFrame:
        with self._db.read() as conn:
            return queries.discovery_runs(conn, limit)

    def db_bytes(self) -> int:
        """Size on disk of the database (DuckDB: the file and its WAL)."""
        return self._db.size_bytes()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Any read-only SQL (``?`` or ``$name`` parameters) as a polars frame."""
        with self._db.read() as conn:
            return frame(conn, sql, params)

    def notebook_query(self, sql: str, row_limit: int = notebook.ROW_LIMIT,
                       timeout_s: float = notebook.TIMEOUT_S) -> notebook.NotebookResult:
        """One SQL-notebook statement on a connection that itself refuses writes and outside
        files, with a time limit and a row limit (see ``notebook.py``)."""
        return notebook.run(self._db, sql, row_limit, timeout_s)

    # --- alerts -------------------------------------------------------------------------------

    def alerts(self, since: datetime | None = None, kinds: Sequence[str] = (), books: Sequence[str] = (),
               tournaments: Sequence[tuple[str, str]] = (), unacknowledged_only: bool = False,
               limit: int | None = None) -> pl.DataFrame:
        """Movement alerts, newest first, with their event (``alerts.list_alerts``)."""
        with self._db.read() as conn:
            return list_alerts(conn, since, kinds, books, tournaments, unacknowledged_only, limit)

    def unacknowledged_alerts(self) -> int:
        with self._db.read() as conn:
            return count_unacknowledged(conn)

    def acknowledge_alerts(self, ids: Sequence[int]) -> int:
        """Acknowledge these alerts now; returns how many were still unacknowledged."""
        with self._db.write() as conn:
            return acknowledge(conn, ids)

    # --- analytics ----------------------------------------------------------------------------

    def margin_analytics(self, start: datetime, end: datetime, markets: Sequence[str] | None = None,
                         now: datetime | None = None) -> dict[str, pl.DataFrame]:
        """Each book's margins over [start, end) (to now at most) and its price-change counts, as
        additive sums: ``cells`` and ``buckets`` (``analytics.py``). The hours already rolled up
        are summed, the rest rebuilt from history (``rollups.margin_analytics``), in short reads."""
        return rollups.margin_analytics(self._db, start, end, markets, now or utcnow())

    def roll_up_margins(self, history_days: float, now: datetime | None = None,
                        budget_s: float | None = None) -> rollups.RollupReport:
        """Roll up the complete hours of the last ``history_days`` not rolled up yet (the
        scheduler's job; ``rollups.roll_up``): reads, arithmetic outside the lock, short writes."""
        return rollups.roll_up(self._db, history_days, now, budget_s)

    def margin_rollup_status(self) -> rollups.RollupStatus:
        with self._db.read() as conn:
            return rollups.status(conn)

    # --- archive ------------------------------------------------------------------------------

    def archive_history(self, before: datetime) -> int:
        """Write history observed before ``before`` to the Parquet archive without deleting it
        (rows already archived are skipped); the rows written. Cleanup does this itself."""
        with self._db.write() as conn:
            return archive_history(conn, before, self.path)
