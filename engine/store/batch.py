"""Storing one fetched batch: the SQL of ``Store.store_batch``, run inside its transaction.

Everything goes in as registered Arrow frames and set-based ``INSERT … SELECT`` / ``UPDATE …
FROM``; Python only shapes the frames. The price diff is computed once, in SQL, against
``odds_current`` *before* it is updated (the earlier tool compared new data with itself and
recorded no history, BUG-037/038), and then drives the history append, the update and the
insert. It joins only the current rows of the batch's (event, book) pairs, so its cost follows
the batch, not the table.
"""

from __future__ import annotations

import json

import polars as pl
import sqlalchemy as sa

from engine.store.db import duck, register, to_db_time
from engine.store.runs import add_progress, heartbeat
from engine.store.schema import NO_LINE
from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchResult, BatchWrite

PRICE_KEY = ("sr_id", "bookmaker", "market", "line_key", "outcome")

_EVENT_SCHEMA = {"sr_id": pl.String, "kickoff": pl.Datetime("us"), "country": pl.String,
                 "tournament": pl.String, "home": pl.String, "away": pl.String}
_BOOK_EVENT_SCHEMA = {"bookmaker": pl.String, "book_event_id": pl.String, "sr_id": pl.String}
_STATUS_SCHEMA = {"sr_id": pl.String, "books_requested": pl.String, "books_scraped": pl.String,
                  "books_failed": pl.String, "errors": pl.String, "duration_ms": pl.Int64,
                  "book_event_ids": pl.String}
_PAIR_SCHEMA = {"sr_id": pl.String, "bookmaker": pl.String}


class BatchError(ValueError):
    """The batch contradicts the contract (e.g. one price key twice); nothing was written."""


def price_frame(prices: pl.DataFrame) -> pl.DataFrame:
    """The batch prices in PRICE_SCHEMA, lines at 2 decimals, plus the key column ``line_key``."""
    line = pl.col("line").round(2)
    frame = prices.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()]).with_columns(
        pl.when(line == 0).then(0.0).otherwise(line).alias("line"),  # -0.0 is 0.0
    ).with_columns(pl.col("line").fill_null(NO_LINE).alias("line_key"))
    dupes = frame.select(PRICE_KEY).filter(pl.struct(PRICE_KEY).is_duplicated())
    if dupes.height:
        raise BatchError(f"{dupes.height} prices share a key (event, book, market, line, outcome), "
                         f"e.g. {dupes.unique().head(3).rows()}")
    return frame


def pair_frame(scraped: list[tuple[str, str]], prices: pl.DataFrame) -> pl.DataFrame:
    """Every (event, book) the batch speaks for; ``scraped`` ones are complete price sets."""
    listed = pl.DataFrame(scraped, schema=_PAIR_SCHEMA, orient="row").with_columns(scraped=pl.lit(True))
    quoted = prices.select("sr_id", "bookmaker").unique().with_columns(scraped=pl.lit(False))
    return pl.concat([listed, quoted]).group_by("sr_id", "bookmaker").agg(pl.col("scraped").max())


def batch_frames(batch: BatchWrite) -> dict[str, pl.DataFrame]:
    """The batch as the frames ``write_batch`` registers; built before the lock is taken."""
    prices = price_frame(batch.prices)
    events = pl.DataFrame(
        [(e.sr_id, to_db_time(e.kickoff), e.country, e.tournament, e.home, e.away) for e in batch.events],
        schema=_EVENT_SCHEMA, orient="row",
    ).unique("sr_id", keep="last", maintain_order=True)
    book_events = pl.DataFrame(
        [(b.bookmaker, b.book_event_id, b.sr_id) for b in batch.book_events], schema=_BOOK_EVENT_SCHEMA, orient="row",
    ).unique(["bookmaker", "book_event_id"], keep="last", maintain_order=True)
    statuses = pl.DataFrame(
        [(s.sr_id, json.dumps(list(s.books_requested)), json.dumps(list(s.books_scraped)),
          json.dumps(list(s.books_failed)), json.dumps(s.errors), s.duration_ms, json.dumps(s.book_event_ids))
         for s in batch.statuses],
        schema=_STATUS_SCHEMA, orient="row",
    ).unique("sr_id", keep="last", maintain_order=True)
    unmapped = batch.unmapped.select([pl.col(c).cast(t) for c, t in UNMAPPED_SCHEMA.items()])
    return {"_b_prices": prices, "_b_pairs": pair_frame(batch.scraped, prices), "_b_events": events,
            "_b_book_events": book_events, "_b_statuses": statuses, "_b_unmapped": unmapped}


def _match(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in PRICE_KEY)


# One row per batch price and per current price of a scraped pair, with what happens to it:
# new / changed / same (quoted in the batch), gone (available but no longer quoted). A quoted
# row keeps its own values even when they are NULL, so a bad price fails a NOT NULL constraint
# instead of quietly taking the old one.
_DIFF = f"""
CREATE TEMP TABLE _b_diff AS
SELECT * FROM (
    SELECT CASE WHEN p.quoted THEN p.sr_id ELSE c.sr_id END AS sr_id,
           CASE WHEN p.quoted THEN p.bookmaker ELSE c.bookmaker END AS bookmaker,
           CASE WHEN p.quoted THEN p.market ELSE c.market END AS market,
           CASE WHEN p.quoted THEN p.line_key ELSE c.line_key END AS line_key,
           CASE WHEN p.quoted THEN p.outcome ELSE c.outcome END AS outcome,
           CASE WHEN p.quoted THEN p.line ELSE c.line END AS line,
           CASE WHEN p.quoted THEN p.odds ELSE c.odds END AS odds,
           CASE WHEN p.quoted THEN p.available ELSE false END AS available,
           c.cur,
           CASE WHEN c.cur IS NULL THEN 'new'
                WHEN p.quoted IS NULL THEN CASE WHEN c.scraped AND c.available THEN 'gone' END
                WHEN p.odds <> c.odds OR p.available <> c.available THEN 'changed'
                ELSE 'same' END AS state,
           CASE WHEN NOT c.available THEN c.unavailable_at END AS old_unavailable_at
    FROM (SELECT *, true AS quoted FROM _b_prices) p
    FULL JOIN (
        SELECT c.rowid AS cur, c.*, s.scraped
        FROM odds_current c JOIN _b_pairs s ON c.sr_id = s.sr_id AND c.bookmaker = s.bookmaker
    ) c ON {_match("p", "c")}
) WHERE state IS NOT NULL
"""

_COUNTS = """
SELECT count(*) FILTER (WHERE state = 'new'), count(*) FILTER (WHERE state = 'changed'),
       count(*) FILTER (WHERE state = 'gone')
FROM _b_diff
"""

_HISTORY = """
INSERT INTO odds_history (sr_id, bookmaker, market, line, outcome, odds, available, observed_at, run_id)
SELECT sr_id, bookmaker, market, line, outcome, odds, available, $obs, $run
FROM _b_diff WHERE state <> 'same'
ORDER BY sr_id, bookmaker, market, line_key, outcome
"""

# rowid is stable inside this transaction: the diff read it, nothing has moved since.
_UPDATE_CURRENT = """
UPDATE odds_current SET
    odds = d.odds,
    available = d.available,
    changed_at = CASE WHEN d.state = 'same' THEN odds_current.changed_at ELSE $obs END,
    last_seen_at = CASE WHEN d.state = 'gone' THEN odds_current.last_seen_at ELSE $obs END,
    unavailable_at = CASE WHEN d.available THEN NULL ELSE coalesce(d.old_unavailable_at, $obs) END
FROM _b_diff d WHERE d.cur = odds_current.rowid AND d.state <> 'new'
"""

_INSERT_CURRENT = """
INSERT INTO odds_current (sr_id, bookmaker, market, line_key, outcome, line, odds, available,
                          changed_at, last_seen_at, unavailable_at)
SELECT sr_id, bookmaker, market, line_key, outcome, line, odds, available, $obs, $obs,
       CASE WHEN available THEN NULL ELSE $obs END
FROM _b_diff WHERE state = 'new'
"""

# MERGE rather than INSERT … ON CONFLICT: the same upsert, about half the cost in DuckDB.
_EVENTS = """
MERGE INTO events e USING _b_events b ON e.sr_id = b.sr_id
WHEN MATCHED THEN UPDATE SET
    kickoff = b.kickoff, country = b.country, tournament = b.tournament, home = b.home, away = b.away,
    first_seen = least(e.first_seen, $obs), last_seen = greatest(e.last_seen, $obs)
WHEN NOT MATCHED THEN INSERT (sr_id, kickoff, country, tournament, home, away, first_seen, last_seen)
    VALUES (b.sr_id, b.kickoff, b.country, b.tournament, b.home, b.away, $obs, $obs)
"""

_BOOK_EVENTS = """
MERGE INTO bookmaker_events e USING _b_book_events b
    ON e.bookmaker = b.bookmaker AND e.book_event_id = b.book_event_id
WHEN MATCHED THEN UPDATE SET sr_id = b.sr_id, last_seen = greatest(e.last_seen, $obs)
WHEN NOT MATCHED THEN INSERT (bookmaker, book_event_id, sr_id, last_seen)
    VALUES (b.bookmaker, b.book_event_id, b.sr_id, $obs)
"""

_STATUSES = """
MERGE INTO event_scrape_status e USING _b_statuses b ON e.run_id = $run AND e.sr_id = b.sr_id
WHEN MATCHED THEN UPDATE SET
    books_requested = b.books_requested, books_scraped = b.books_scraped, books_failed = b.books_failed,
    errors = b.errors, duration_ms = b.duration_ms, book_event_ids = b.book_event_ids, observed_at = $obs
WHEN NOT MATCHED THEN INSERT (run_id, sr_id, books_requested, books_scraped, books_failed, errors,
                              duration_ms, book_event_ids, observed_at)
    VALUES ($run, b.sr_id, b.books_requested, b.books_scraped, b.books_failed, b.errors,
            b.duration_ms, b.book_event_ids, $obs)
"""

_UNMAPPED = """
MERGE INTO unmapped_markets u USING (
    SELECT bookmaker, market_id, reason, coalesce(max(name), '') AS name,
           coalesce(arg_max(detail, occurrences), '') AS detail, sum(occurrences) AS occurrences
    FROM _b_unmapped GROUP BY bookmaker, market_id, reason
) b ON u.bookmaker = b.bookmaker AND u.market_id = b.market_id AND u.reason = b.reason
WHEN MATCHED THEN UPDATE SET
    occurrences = u.occurrences + b.occurrences,
    name = CASE WHEN b.name <> '' THEN b.name ELSE u.name END,
    detail = CASE WHEN b.detail <> '' THEN b.detail ELSE u.detail END,
    first_seen = least(u.first_seen, $obs), last_seen = greatest(u.last_seen, $obs)
WHEN NOT MATCHED THEN INSERT (bookmaker, market_id, reason, name, detail, occurrences, first_seen, last_seen)
    VALUES (b.bookmaker, b.market_id, b.reason, b.name, b.detail, b.occurrences, $obs, $obs)
"""


def write_batch(conn: sa.Connection, batch: BatchWrite, frames: dict[str, pl.DataFrame]) -> BatchResult:
    """Store ``batch`` (as ``batch_frames``) on ``conn``, the caller's open write transaction.
    ``seconds`` is left 0: the caller knows when its transaction ended."""
    db = duck(conn)
    for name, data in frames.items():
        register(conn, name, data)
    obs = {"obs": to_db_time(batch.observed_at)}
    run = {"run": batch.run_id}
    if frames["_b_events"].height:
        db.execute(_EVENTS, obs)
    if frames["_b_book_events"].height:
        db.execute(_BOOK_EVENTS, obs)
    db.execute(_DIFF)
    inserted, changed, gone = db.execute(_COUNTS).fetchall()[0]
    if inserted + changed + gone:
        db.execute(_HISTORY, obs | run)
    db.execute(_UPDATE_CURRENT, obs)
    if inserted:
        db.execute(_INSERT_CURRENT, obs)
    if frames["_b_statuses"].height:
        db.execute(_STATUSES, obs | run)
    if frames["_b_unmapped"].height:
        db.execute(_UNMAPPED, obs)
    db.execute("DROP TABLE _b_diff")
    for name in frames:
        db.unregister(name)
    result = BatchResult(
        prices=frames["_b_prices"].height, inserted=inserted, changed=changed,
        history_rows=inserted + changed + gone, became_unavailable=gone, seconds=0.0,
    )
    _finish_batch(conn, batch, result)
    return result


def _finish_batch(conn: sa.Connection, batch: BatchWrite, result: BatchResult) -> None:
    total = batch.batches_total or None
    add_progress(
        conn, batch.run_id, "BATCH_COMPLETE",
        f"batch {batch.batch_no}{f'/{total}' if total else ''} stored: {result.prices} prices, "
        f"{result.history_rows} changes",
        {"events": len({s.sr_id for s in batch.statuses} | {e.sr_id for e in batch.events}),
         "prices": result.prices, "inserted": result.inserted, "changed": result.changed,
         "history_rows": result.history_rows, "became_unavailable": result.became_unavailable},
        batch.batch_no, total,
    )
    heartbeat(conn, batch.run_id)
