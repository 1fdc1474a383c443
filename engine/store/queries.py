"""The store's reads: SQL that returns polars frames, run on a read-only connection.

Frames keep JSON columns as JSON text (one dtype whatever the content); the single-row reads
(``run``) decode them. Rows come in a stable order so a page that re-renders does not shuffle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl
import sqlalchemy as sa

from engine.markets.catalogue import normalize_line
from engine.store.db import frame
from engine.store.runs import JSON_RUN_COLUMNS
from engine.store.schema import COUNTED_IN, TABLES

CURRENT_PRICE_COLUMNS = (
    "sr_id", "kickoff", "country", "tournament", "home", "away", "bookmaker", "market", "line", "outcome",
    "odds", "available", "changed_at", "last_seen_at", "unavailable_at",
)


def runs(conn: sa.Connection, limit: int) -> pl.DataFrame:
    return frame(conn, "SELECT * FROM scrape_runs ORDER BY id DESC LIMIT ?", [limit])


def run(conn: sa.Connection, run_id: int) -> dict[str, Any] | None:
    rows = frame(conn, "SELECT * FROM scrape_runs WHERE id = ?", [run_id]).to_dicts()
    if not rows:
        return None
    return {k: (json.loads(v) if k in JSON_RUN_COLUMNS and v is not None else v) for k, v in rows[0].items()}


def run_progress(conn: sa.Connection, run_id: int) -> pl.DataFrame:
    return frame(conn, "SELECT * FROM run_progress WHERE run_id = ? ORDER BY seq", [run_id])


def event_status(conn: sa.Connection, run_id: int) -> pl.DataFrame:
    return frame(conn, "SELECT * FROM event_scrape_status WHERE run_id = ? ORDER BY observed_at, sr_id", [run_id])


def run_requests(conn: sa.Connection, limit: int) -> pl.DataFrame:
    return frame(conn, "SELECT * FROM run_requests ORDER BY id DESC LIMIT ?", [limit])


def events(conn: sa.Connection) -> pl.DataFrame:
    return frame(conn, "SELECT * FROM events ORDER BY kickoff, sr_id")


def current_prices(conn: sa.Connection, sr_ids: Sequence[str] | None, market: str | None,
                   available_only: bool) -> pl.DataFrame:
    where, params = [], []
    if sr_ids is not None:
        if not sr_ids:
            where.append("false")
        else:
            where.append(f"c.sr_id IN ({', '.join('?' * len(sr_ids))})")
            params.extend(sr_ids)
    if market is not None:
        where.append("c.market = ?")
        params.append(market)
    if available_only:
        where.append("c.available")
    return frame(conn, f"""
        SELECT c.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away, c.bookmaker, c.market, c.line,
               c.outcome, c.odds, c.available, c.changed_at, c.last_seen_at, c.unavailable_at
        FROM odds_current c LEFT JOIN events e ON e.sr_id = c.sr_id
        {"WHERE " + " AND ".join(where) if where else ""}
        ORDER BY e.kickoff, c.sr_id, c.market, c.line_key, c.outcome, c.bookmaker
    """, params)


def odds_history(conn: sa.Connection, sr_id: str, market: str | None, line: float | None) -> pl.DataFrame:
    """One event's history; ``sr_id = ?`` is a constant filter so row-group min/max prune it."""
    where, params = ["sr_id = ?"], [sr_id]
    if market is not None:
        where.append("market = ?")
        params.append(market)
    if line is not None:
        where.append("line = ?")
        params.append(normalize_line(line))
    return frame(conn, f"""
        SELECT sr_id, bookmaker, market, line, outcome, odds, available, observed_at, run_id
        FROM odds_history WHERE {" AND ".join(where)}
        ORDER BY market, line NULLS FIRST, outcome, bookmaker, observed_at
    """, params)


def unmapped(conn: sa.Connection, limit: int | None) -> pl.DataFrame:
    sql = "SELECT * FROM unmapped_markets ORDER BY occurrences DESC, bookmaker, market_id, reason"
    return frame(conn, sql + " LIMIT ?", [limit]) if limit is not None else frame(conn, sql)


def table_counts(conn: sa.Connection) -> dict[str, int]:
    sql = " UNION ALL ".join(f"SELECT '{t}' AS name, count(*) AS n FROM {COUNTED_IN.get(t, t)}" for t in TABLES)
    return dict(frame(conn, sql).iter_rows())


# --- tiers: what the refresh coordinator reads each tick (scheduler/coordinator.py) -----------


def tier_listings(conn: sa.Connection, now: datetime) -> pl.DataFrame:
    """Every book listing of an event kicking off after ``now``: when the book last listed it
    (``listed_at``) and when the store last confirmed one of its prices (``seen_at``)."""
    return frame(conn, """
        WITH upcoming AS (SELECT * FROM events WHERE kickoff > $now),
             seen AS (SELECT sr_id, bookmaker, max(last_seen_at) AS seen_at FROM odds_current
                      WHERE sr_id IN (SELECT sr_id FROM upcoming) GROUP BY sr_id, bookmaker)
        SELECT b.sr_id, b.bookmaker, b.book_event_id, b.last_seen AS listed_at, e.kickoff, e.country,
               e.tournament, e.home, e.away, s.seen_at
        FROM bookmaker_events b JOIN upcoming e ON e.sr_id = b.sr_id
        LEFT JOIN seen s ON s.sr_id = b.sr_id AND s.bookmaker = b.bookmaker
        ORDER BY e.kickoff, b.sr_id, b.bookmaker, b.last_seen
    """, {"now": now})


def discovery_runs(conn: sa.Connection, limit: int) -> pl.DataFrame:
    """The newest finished runs that ran discovery (full cycles and discovery runs)."""
    return frame(conn, """
        SELECT id, kind, status, started_at, finished_at, summary FROM scrape_runs
        WHERE kind IN ('full', 'discovery') AND status <> 'RUNNING' ORDER BY id DESC LIMIT ?
    """, [limit])
