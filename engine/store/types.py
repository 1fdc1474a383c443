"""What the pipeline hands the store for one batch, and what it gets back.

One ``BatchWrite`` is stored in one short write transaction: all of it, or (on error) none of
it. Prices come as a polars frame so they go in as Arrow (DuckDB) or by one COPY (PostgreSQL),
never row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from engine.markets.alerts import AlertThresholds

RUN_STATUSES = ("RUNNING", "COMPLETED", "PARTIAL", "FAILED", "CONNECTION_FAILED", "CANCELLED")

#: Columns (and dtypes) of ``BatchWrite.prices``; ``line`` is null for markets without a line.
PRICE_SCHEMA: dict[str, pl.DataType] = {
    "sr_id": pl.String,
    "bookmaker": pl.String,
    "market": pl.String,
    "line": pl.Float64,
    "outcome": pl.String,
    "odds": pl.Float64,
    "available": pl.Boolean,
}

#: Columns of ``BatchWrite.unmapped``: one row per (book, raw market, reason) with its count.
UNMAPPED_SCHEMA: dict[str, pl.DataType] = {
    "bookmaker": pl.String,
    "market_id": pl.String,
    "name": pl.String,
    "reason": pl.String,
    "detail": pl.String,
    "occurrences": pl.Int64,
}


@dataclass(frozen=True)
class EventRow:
    sr_id: str
    kickoff: datetime  # aware UTC
    country: str
    tournament: str
    home: str
    away: str


@dataclass(frozen=True)
class BookEventRow:
    bookmaker: str
    book_event_id: str
    sr_id: str


@dataclass(frozen=True)
class ScrapeStatusRow:
    sr_id: str
    books_requested: tuple[str, ...]
    books_scraped: tuple[str, ...]
    books_failed: tuple[str, ...]
    errors: dict[str, str]  # book -> "kind: message"
    duration_ms: int
    book_event_ids: dict[str, str] = field(default_factory=dict)  # book -> id, for "retry failed"


@dataclass
class BatchWrite:
    run_id: int
    batch_no: int
    observed_at: datetime  # aware UTC; stamps changed_at / last_seen_at / history rows
    events: list[EventRow]
    book_events: list[BookEventRow]
    prices: pl.DataFrame  # PRICE_SCHEMA
    scraped: list[tuple[str, str]]  # (sr_id, bookmaker) fetched OK: `prices` is their complete set now
    statuses: list[ScrapeStatusRow]
    unmapped: pl.DataFrame  # UNMAPPED_SCHEMA
    batches_total: int = 0
    alert_thresholds: AlertThresholds | None = None  # alerts: evaluated after storing; None = not at all


@dataclass(frozen=True)
class BatchResult:
    prices: int  # rows in the batch
    inserted: int  # new rows in odds_current
    changed: int  # rows whose odds or availability changed
    history_rows: int  # rows appended to odds_history (new + changed + became unavailable)
    became_unavailable: int  # prices of scraped (event, book) pairs that were not quoted any more
    seconds: float
