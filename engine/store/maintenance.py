"""Retention and the odds_history layout.

The event page reads one event's history (``WHERE sr_id = ?``, through the view: one
``event_no``) out of ~100M rows. A DuckDB row group (~123k rows) collects many batches, so its
event_no min/max soon spans every event and nothing can be skipped. Re-writing
``odds_history_data`` sorted by ``HISTORY_ORDER`` makes each row group hold one or two events,
so DuckDB reads only those: 11.6M rows, one event from a fresh
connection, 95 ms → 19 ms (``benchmarks/store.py``); 30M rows on a warm connection, 44 ms → 4.5 ms.

Time comes second in that order, not last: an event's rows then run forward in time as
batches wrote them, so observed_at and run_id pack into a few bits per row instead of ~6
bytes (a 5-minute grid in microseconds spread over 14 days); 11.3 → 7.4 bytes per history
row on the simulator's fortnight (``benchmarks/queries.py``), 4.3 with schema step 4's integer
keys. Reads sort what they return anyway.

The rewrite costs 0.5–1 s per million rows under the write lock, so ``cleanup`` (hourly) does it
only when the rows appended since the last one pass ``CLUSTER_TAIL_SHARE`` of the table (at
14 days ≈ 137M rows: about every 1–2 days); it also gives back the space of deleted rows.

PostgreSQL reads one event through an index (schema step 7), but its rows still sit on as many
pages as batches wrote them to: the same re-sort puts them on a few neighbouring pages, and
leaves no dead rows behind. Its indexes are built on the sorted copy before the swap, so readers
wait only for the swap itself, not for the sort.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

import sqlalchemy as sa

from engine.store import rollups
from engine.store.db import affected, frame, is_postgres, rows, run, to_db_time, utcnow
from engine.store.schema import HISTORY_VIEW, odds_history_data, pg_index_sql, store_state

CLUSTER_MIN_TAIL = 1_000_000
CLUSTER_TAIL_SHARE = 0.10
HISTORY_ORDER = "event_no, observed_at, kind_id"
_CLUSTERED_KEY = "odds_history_sorted_through"
#: Write connections run one DuckDB thread (``db.WRITE_CONFIG``); a bulk rewrite uses every core,
#: and sorts within ``BULK_MEMORY``, spilling the rest to ``<db>.tmp``: left to DuckDB's default
#: (80% of RAM), re-sorting 234M rows took 20 GB. PostgreSQL sorts and builds indexes in
#: ``BULK_MEMORY`` too (its defaults, 4 MB and 64 MB, would spill nearly everything).
BULK_THREADS = os.cpu_count() or 1
BULK_MEMORY = "1GB"


def bulk_settings(conn: sa.Connection) -> None:
    """Settings for a bulk rewrite on this unit of work's connection (it closes with the unit;
    on PostgreSQL, whose connections are pooled, they end with the transaction)."""
    if is_postgres(conn):
        run(conn, f"SET LOCAL work_mem = '{BULK_MEMORY}'; SET LOCAL maintenance_work_mem = '{BULK_MEMORY}'")
    else:
        run(conn, f"SET threads = {BULK_THREADS}; SET memory_limit = '{BULK_MEMORY}'")


def delete_old(conn: sa.Connection, history_days: float, run_days: float,
               now: datetime | None = None) -> dict[str, int]:
    """Runs (with their progress and status rows), finished requests, history and events that
    kicked off before the history window — in the caller's transaction. ``now`` (default: now)
    lets cleanup archive exactly the history this deletes (archive: same cutoff)."""
    now = now or utcnow()
    runs_before = now - timedelta(days=run_days)
    history_before = now - timedelta(days=history_days)
    run(conn, """
        CREATE TEMP TABLE _old_runs AS SELECT id FROM scrape_runs
        WHERE status <> 'RUNNING' AND coalesce(finished_at, started_at) < ?""", [runs_before])
    run(conn, "CREATE TEMP TABLE _old_events AS SELECT sr_id FROM events WHERE kickoff < ?", [history_before])
    statements = {
        "run_progress": "DELETE FROM run_progress WHERE run_id IN (SELECT id FROM _old_runs)",
        "event_scrape_status": "DELETE FROM event_scrape_status WHERE run_id IN (SELECT id FROM _old_runs)",
        "scrape_runs": "DELETE FROM scrape_runs WHERE id IN (SELECT id FROM _old_runs)",
        "run_requests": ("DELETE FROM run_requests WHERE status IN ('DONE', 'FAILED') "
                         "AND coalesce(finished_at, created_at) < $runs_before"),
        "odds_history": "DELETE FROM odds_history_data WHERE observed_at < $history_before",
        "odds_current": "DELETE FROM odds_current WHERE sr_id IN (SELECT sr_id FROM _old_events)",
        "bookmaker_events": "DELETE FROM bookmaker_events WHERE sr_id IN (SELECT sr_id FROM _old_events)",
        "events": "DELETE FROM events WHERE sr_id IN (SELECT sr_id FROM _old_events)",
        # alerts: acknowledged or cleared before the run window (engine/store/alerts.py)
        "alerts": "DELETE FROM alerts WHERE acknowledged_at < $runs_before OR cleared_at < $runs_before",
    }
    params = {"runs_before": runs_before, "history_before": history_before}
    counts = {}
    for table, sql in statements.items():
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        counts[table] = affected(conn, sql, used or None)
    run(conn, "DROP TABLE _old_runs")
    run(conn, "DROP TABLE _old_events")
    run(conn, _UNUSED_EVENTS[is_postgres(conn)])
    counts["margin_rollup"] = rollups.delete_before(conn, history_before)  # rollups: same window as history
    return counts


#: Event numbers no history row uses any more. DuckDB hashes every event_no once (faster than its
#: anti-join); PostgreSQL looks each number up in its index instead of reading the whole table.
_UNUSED_EVENTS = {
    False: "DELETE FROM history_events WHERE event_no NOT IN (SELECT DISTINCT event_no FROM odds_history_data)",
    True: """DELETE FROM history_events e
             WHERE NOT EXISTS (SELECT 1 FROM odds_history_data h WHERE h.event_no = e.event_no)""",
}


def history_tail(conn: sa.Connection) -> tuple[int, int]:
    """(rows appended since the last clustering, all rows)."""
    through = sorted_through(conn)
    if through is None:
        total = int(frame(conn, "SELECT count(*) FROM odds_history_data").item())
        return total, total
    tail, total = frame(conn, "SELECT count(*) FILTER (WHERE observed_at > ?) AS tail, count(*) AS total "
                              "FROM odds_history_data", [through]).row(0)
    return int(tail), int(total)


def clustering_due(tail: int, total: int) -> bool:
    return tail >= max(CLUSTER_MIN_TAIL, CLUSTER_TAIL_SHARE * total)


def cluster_history(conn: sa.Connection) -> int:
    """Rewrite odds_history_data in HISTORY_ORDER (in the caller's transaction); returns its rows.

    The view over it is dropped and made again around the swap: DuckDB will not drop a table a
    view depends on (nor will PostgreSQL). On PostgreSQL the copy gets the table's indexes
    (under names of its own until the old table and its indexes are gone) and fresh statistics."""
    postgres = is_postgres(conn)
    sorted_table = odds_history_data.to_metadata(sa.MetaData(), name="odds_history_sorted")
    sorted_table.create(conn)
    bulk_settings(conn)
    run(conn, f"INSERT INTO odds_history_sorted SELECT * FROM odds_history_data ORDER BY {HISTORY_ORDER}")
    through, count = rows(conn, "SELECT max(observed_at), count(*) FROM odds_history_sorted")[0]
    indexes = pg_index_sql("odds_history_data", on="odds_history_sorted", suffix="_sorted") if postgres else {}
    for sql in indexes.values():
        run(conn, sql)
    run(conn, "DROP VIEW odds_history")
    run(conn, "DROP TABLE odds_history_data")
    run(conn, "ALTER TABLE odds_history_sorted RENAME TO odds_history_data")
    for name in indexes:
        run(conn, f"ALTER INDEX {name}_sorted RENAME TO {name}")
    run(conn, HISTORY_VIEW)
    if postgres:
        run(conn, "ANALYZE odds_history_data")
    set_sorted_through(conn, through)
    return int(count)


def sorted_through(conn: sa.Connection) -> datetime | None:
    """Rows observed up to this time are in a sorted layout (the last clustering or imports)."""
    value = conn.execute(sa.select(store_state.c.value).where(store_state.c.key == _CLUSTERED_KEY)).scalar()
    through = json.loads(value) if value else None
    return datetime.fromisoformat(through) if through else None


def set_sorted_through(conn: sa.Connection, through: datetime | None) -> None:
    conn.execute(sa.delete(store_state).where(store_state.c.key == _CLUSTERED_KEY))
    value = json.dumps(to_db_time(through).isoformat() if through else None)
    conn.execute(sa.insert(store_state).values(key=_CLUSTERED_KEY, value=value, updated_at=utcnow()))
