"""Writing odds_history: ``append_history`` (every batch and import) and ``Store.import_history``.

For history that did not come from this store's scrapes — the earlier tool's export, or the
fortnight ``benchmarks/queries.py`` generates — in frames of millions of rows, not as thousands
of ``store_batch`` calls. Each frame is one transaction and goes in sorted in the order
``cleanup`` clusters the table (``maintenance.HISTORY_ORDER``), so one event's rows share a row
group or two per import and DuckDB's min/max on ``sr_id`` skips everything else without a
re-sort; frames imported in event order give exactly the clustered layout. On PostgreSQL the
frame goes in by ``COPY`` (``db.register``) and the same SQL appends it.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
import sqlalchemy as sa

from engine.store import maintenance
from engine.store.db import affected, register, rows, run, unregister

#: Columns of an imported frame. ``run_id`` may be left out: imported rows then carry
#: ``IMPORTED_RUN_ID``, which no scrape run has (run ids start at 1).
HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "sr_id": pl.String, "bookmaker": pl.String, "market": pl.String, "line": pl.Float64, "outcome": pl.String,
    "odds": pl.Float64, "available": pl.Boolean, "observed_at": pl.Datetime("us"), "run_id": pl.Int64,
}
IMPORTED_RUN_ID = 0


#: The price's name in a history source, matched null-safe (``line`` is null for line-less markets).
_KIND_MATCH = ("k.bookmaker = s.bookmaker AND k.market = s.market AND k.outcome = s.outcome "
               "AND k.line IS NOT DISTINCT FROM s.line")


def append_history(conn: sa.Connection, source: str, ordered: bool = False, numbered: int | None = None) -> None:
    """Append the rows of ``source`` (a registered frame or table with the columns of
    HISTORY_SCHEMA) to odds_history, in the caller's write transaction.

    odds_history is a view (schema step 4): the rows go to ``odds_history_data`` under their
    event number and price kind, which are added first for events and prices not seen before.
    Numbers continue from the largest in use: there is one writer (the exclusive lock).
    ``ordered`` writes the rows in HISTORY_ORDER (an import's rows are a clustered block).

    ``numbered``: the number of rows of ``source``, when they are expected to find their numbers
    (a batch of events the store has prices of): the rows are then appended first, and numbers
    are added only if some found none (a price kind never seen; an event whose history all
    expired, its number dropped by ``cleanup``), and those rows appended after. Most batches so
    save two statements (~5 ms).
    """
    data = f"""
        INSERT INTO odds_history_data (event_no, kind_id, odds, available, observed_at, run_id)
        SELECT e.event_no, k.kind_id, s.odds, s.available, s.observed_at, s.run_id
        FROM {source} s JOIN history_events e ON e.sr_id = s.sr_id JOIN price_kinds k ON {_KIND_MATCH}
        {{where}}
        {f"ORDER BY {maintenance.HISTORY_ORDER}" if ordered else ""}"""
    if numbered is not None and affected(conn, data.format(where="")) == numbered:
        return
    added_after = rows(conn, "SELECT (SELECT coalesce(max(event_no), 0) FROM history_events), "
                             "(SELECT coalesce(max(kind_id), 0) FROM price_kinds)")[0]
    run(conn, f"""
        INSERT INTO history_events
        SELECT coalesce((SELECT max(event_no) FROM history_events), 0) + row_number() OVER (ORDER BY sr_id), sr_id
        FROM (SELECT DISTINCT sr_id FROM {source} s
              WHERE NOT EXISTS (SELECT 1 FROM history_events e WHERE e.sr_id = s.sr_id)) AS n""")
    run(conn, f"""
        INSERT INTO price_kinds
        SELECT coalesce((SELECT max(kind_id) FROM price_kinds), 0)
               + row_number() OVER (ORDER BY bookmaker, market, line, outcome), bookmaker, market, line, outcome
        FROM (SELECT DISTINCT bookmaker, market, line, outcome FROM {source} s
              WHERE NOT EXISTS (SELECT 1 FROM price_kinds k WHERE {_KIND_MATCH})) AS n""")
    if numbered is None:
        run(conn, data.format(where=""))
    else:  # the rows the first attempt could not number: those of the numbers just added
        run(conn, data.format(where="WHERE e.event_no > ? OR k.kind_id > ?"), list(added_after))


def stored_line(line: pl.Expr) -> pl.Expr:
    """``normalize_line`` for a column: 2 decimals, and -0.0 is 0.0 (else it would be a key of its own)."""
    rounded = line.round(2)
    return pl.when(rounded == 0).then(0.0).otherwise(rounded)


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
    register(conn, "_import", rows)
    append_history(conn, "_import", ordered=True)
    unregister(conn, "_import")
    if clean:
        newest: datetime = rows["observed_at"].max()  # type: ignore[assignment]
        through = maintenance.sorted_through(conn)
        maintenance.set_sorted_through(conn, newest if through is None else max(through, newest))
    return rows.height
