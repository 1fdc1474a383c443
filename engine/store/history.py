"""Bulk history import: ``Store.import_history``.

For history that did not come from this store's scrapes — the earlier tool's export, or the
fortnight ``benchmarks/queries.py`` generates — in frames of millions of rows, not as thousands
of ``store_batch`` calls. Each frame is one transaction and goes in sorted in the order
``cleanup`` clusters the table (``maintenance.HISTORY_ORDER``), so one event's rows share a row
group or two per import and DuckDB's min/max on ``sr_id`` skips everything else without a
re-sort; frames imported in event order give exactly the clustered layout.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import sqlalchemy as sa

from engine.store import maintenance
from engine.store.batch import stored_line
from engine.store.db import duck, register

#: Columns of an imported frame. ``run_id`` may be left out: imported rows then carry
#: ``IMPORTED_RUN_ID``, which no scrape run has (run ids start at 1).
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "sr_id": pl.String, "bookmaker": pl.String, "market": pl.String, "line": pl.Float64, "outcome": pl.String,
    "odds": pl.Float64, "available": pl.Boolean, "observed_at": pl.Datetime("us"), "run_id": pl.Int64,
}
IMPORTED_RUN_ID = 0


def history_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` as odds_history rows: HISTORY_SCHEMA, lines as the store keeps them, and
    ``observed_at`` in database time (aware times converted to UTC, naive ones taken as UTC)."""
    if "run_id" not in frame.columns:
        frame = frame.with_columns(run_id=pl.lit(IMPORTED_RUN_ID, pl.Int64))
    missing = [c for c in HISTORY_SCHEMA if c not in frame.columns]
    if missing:
        raise ValueError(f"history frame lacks {', '.join(missing)}")
    observed = frame.schema["observed_at"]
    if isinstance(observed, pl.Datetime) and observed.time_zone is not None:
        frame = frame.with_columns(pl.col("observed_at").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame.select([pl.col(c).cast(t) for c, t in HISTORY_SCHEMA.items()]).with_columns(
        stored_line(pl.col("line")).alias("line"))


def import_history(conn: sa.Connection, frame: pl.DataFrame) -> int:
    """Append ``history_frame(frame)`` sorted, in the caller's write transaction; its rows.

    Imported rows count as clustered when the table had no unsorted tail before (so ``cleanup``
    does not rewrite a freshly imported table); otherwise the clustering bookkeeping is left as
    it was and the next re-sort takes them along.
    """
    rows = history_frame(frame)
    if rows.is_empty():
        return 0
    clean = maintenance.history_tail(conn)[0] == 0
    maintenance.bulk_settings(conn)
    db = duck(conn)
    register(conn, "_import", rows)
    db.execute(f"INSERT INTO odds_history ({', '.join(HISTORY_SCHEMA)}) "
               f"SELECT {', '.join(HISTORY_SCHEMA)} FROM _import ORDER BY {maintenance.HISTORY_ORDER}")
    db.unregister("_import")
    if clean:
        newest: datetime = rows["observed_at"].max()  # type: ignore[assignment]
        through = maintenance.sorted_through(conn)
        maintenance.set_sorted_through(conn, newest if through is None else max(through, newest))
    return rows.height
