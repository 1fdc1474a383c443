"""Storing one fetched batch: the SQL of ``Store.store_batch``, run inside its transaction.

Everything goes in as registered frames (Arrow on DuckDB, a COPY-filled temporary table on
PostgreSQL) and set-based ``INSERT … SELECT`` / ``UPDATE … FROM`` / ``MERGE``: one SQL text for
both but for how the price rows are read and found again (``_CURRENT``, ``_SEEN_AGAIN``,
``_ROW``). The price diff is one polars join
(``diff_prices``, a pure function) of the batch with the current rows of its (event, book)
pairs, read once; it then drives the history append, the updates and the insert, so the cost
follows the batch, not the table. On DuckDB odds_current has no index to maintain (schema step
2): this diff is what keeps its key unique.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

from engine.store.alerts import finish_evaluation, start_evaluation
from engine.store.db import db_frame, is_postgres, register, run, to_db_time, unregister
from engine.store.history import HISTORY_SCHEMA, append_history, stored_line
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
    frame = prices.select([pl.col(c).cast(t) for c, t in PRICE_SCHEMA.items()]).with_columns(
        stored_line(pl.col("line")).alias("line"),
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


def unmapped_frame(unmapped: pl.DataFrame) -> pl.DataFrame:
    """One row per (book, market id, reason): the batch's occurrences summed, a name, and the
    detail of the most frequent row as the sample."""
    return unmapped.select([pl.col(c).cast(t) for c, t in UNMAPPED_SCHEMA.items()]).group_by(
        "bookmaker", "market_id", "reason", maintain_order=True,
    ).agg(
        pl.col("name").max().fill_null(""),
        pl.col("detail").sort_by("occurrences", descending=True, nulls_last=True).first().fill_null(""),
        pl.col("occurrences").sum(),
    )


@dataclass(frozen=True)
class BatchFrames:
    """The batch as frames, built before the lock is taken: ``prices`` (``price_frame``) is
    diffed in polars against the current prices of ``pairs`` (``pair_frame``), ``tables`` are
    registered under their names for the SQL."""

    prices: pl.DataFrame
    pairs: pl.DataFrame
    tables: dict[str, pl.DataFrame]


def batch_frames(batch: BatchWrite) -> BatchFrames:
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
    unmapped = unmapped_frame(batch.unmapped)
    return BatchFrames(prices, pair_frame(batch.scraped, prices),
                       {"_b_events": events, "_b_book_events": book_events, "_b_statuses": statuses,
                        "_b_unmapped": unmapped})


#: The current rows of the batch's events (``event_prices``; ``current_rows`` keeps those of its pairs),
#: the events given as an array: PostgreSQL reads them through its index (a join with registered
#: pairs scanned the whole table), DuckDB needs no frame registered for them. DuckDB numbers
#: them by ``rowid``, which its updates find them by (stable inside this transaction: nothing has
#: moved since the diff read it). PostgreSQL's row ids move on every update, so there ``cur``
#: only numbers the rows read (the alerts pair each change with its row before by it) and
#: updates find their row by the key (its unique index, schema step 7).
_CURRENT = {postgres: f"""
SELECT {"row_number() OVER ()" if postgres else "rowid"} AS cur, sr_id, bookmaker, market, line_key, outcome, line,
       odds, available, unavailable_at
FROM odds_current WHERE sr_id = ANY($events)
""" for postgres in (False, True)}
_ROW = {False: "d.cur = odds_current.rowid", True: " AND ".join(f"d.{c} = odds_current.{c}" for c in PRICE_KEY)}

#: ``diff_prices`` columns: the price's key and values after this batch, what happened to it,
#: and the odds_current row it came from (``cur``, null for a new price).
DIFF_SCHEMA: dict[str, pl.DataType] = {
    "cur": pl.Int64, "state": pl.String, "sr_id": pl.String, "bookmaker": pl.String, "market": pl.String,
    "line_key": pl.Float64, "outcome": pl.String, "line": pl.Float64, "odds": pl.Float64, "available": pl.Boolean,
    "unavailable_at": pl.Datetime("us"),
}


def event_prices(conn: sa.Connection, pairs: pl.DataFrame) -> pl.DataFrame:
    """The current prices of the batch's events, every book's (``pairs`` is ``pair_frame``)."""
    return db_frame(conn, _CURRENT[is_postgres(conn)], {"events": pairs["sr_id"].unique().to_list()})


def current_rows(event_prices: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """The current prices of the batch's (event, book) pairs, with the pair's ``scraped`` flag."""
    return event_prices.join(pairs, on=["sr_id", "bookmaker"], how="inner")


def diff_prices(prices: pl.DataFrame, current: pl.DataFrame, observed_at: datetime) -> pl.DataFrame:
    """What the batch does to each price it speaks for, computed against odds_current *before*
    it is updated (the earlier tool compared new data with itself and recorded no history,
    BUG-037/038).

    ``prices`` is ``price_frame``; ``current`` is ``current_rows``. State: ``new`` / ``changed``
    / ``same`` for quoted prices, ``gone`` for an available price of a scraped pair that is no
    longer quoted (it becomes unavailable). Current prices of unscraped pairs, and ones already
    unavailable, are left out. A quoted price keeps its own values even when they are null, so
    a bad price fails a NOT NULL constraint instead of quietly taking the old one.
    """
    joined = prices.with_columns(quoted=pl.lit(True)).join(
        current, on=list(PRICE_KEY), how="full", coalesce=True, suffix="_old")
    quoted, was_available = pl.col("quoted").fill_null(False), pl.col("available_old")
    state = (
        pl.when(pl.col("cur").is_null()).then(pl.lit("new"))
        .when(~quoted).then(pl.when(pl.col("scraped") & was_available).then(pl.lit("gone")))
        .when(pl.col("odds").ne_missing(pl.col("odds_old")) | pl.col("available").ne_missing(was_available))
        .then(pl.lit("changed"))
        .otherwise(pl.lit("same"))
    )
    available = pl.when(quoted).then(pl.col("available")).otherwise(False)
    still_unavailable_since = pl.when(~was_available).then(pl.col("unavailable_at"))
    return joined.with_columns(state=state).filter(pl.col("state").is_not_null()).select(
        pl.col("cur"), pl.col("state"), *PRICE_KEY,
        pl.when(quoted).then(pl.col("line")).otherwise(pl.col("line_old")).alias("line"),
        pl.when(quoted).then(pl.col("odds")).otherwise(pl.col("odds_old")).alias("odds"),
        available.alias("available"),
        pl.when(available).then(None)
        .otherwise(pl.coalesce(still_unavailable_since, pl.lit(observed_at, pl.Datetime("us"))))
        .alias("unavailable_at"),
    ).cast(DIFF_SCHEMA)


#: Unchanged prices only get last_seen_at, so most of the table's columns stay untouched by the
#: checkpoint (DuckDB) and no index entry is written (PostgreSQL: a HOT update). They are most of
#: a batch: PostgreSQL takes the rows of the batch's events but the few that are not unchanged
#: prices of its pairs (``_b_keep``, indexed, so that no misestimate can make the anti-join a
#: nested scan), where joining 30k registered keys cost as much again as the update, and
#: registering them (``COPY``) as much once more; only the other rows go to its ``_b_diff``.
_SEEN_AGAIN = {
    False: """
UPDATE odds_current SET last_seen_at = $obs FROM _b_diff d WHERE d.cur = odds_current.rowid AND d.state = 'same'
""",
    True: f"""
UPDATE odds_current c SET last_seen_at = $obs
WHERE c.sr_id = ANY($events)
  AND NOT EXISTS (SELECT 1 FROM _b_keep k WHERE {" AND ".join(f"k.{c} = c.{c}" for c in PRICE_KEY)})
""",
}

_UPDATE_CURRENT = """
UPDATE odds_current SET odds = d.odds, available = d.available, changed_at = $obs,
       last_seen_at = CASE WHEN d.state = 'gone' THEN odds_current.last_seen_at ELSE $obs END,
       unavailable_at = d.unavailable_at
FROM _b_diff d WHERE {row} AND d.state IN ('changed', 'gone')
"""

_INSERT_CURRENT = """
INSERT INTO odds_current (sr_id, bookmaker, market, line_key, outcome, line, odds, available,
                          changed_at, last_seen_at, unavailable_at)
SELECT sr_id, bookmaker, market, line_key, outcome, line, odds, available, $obs, $obs, unavailable_at
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
MERGE INTO unmapped_markets u USING _b_unmapped b
    ON u.bookmaker = b.bookmaker AND u.market_id = b.market_id AND u.reason = b.reason
WHEN MATCHED THEN UPDATE SET
    occurrences = u.occurrences + b.occurrences,
    name = CASE WHEN b.name <> '' THEN b.name ELSE u.name END,
    detail = CASE WHEN b.detail <> '' THEN b.detail ELSE u.detail END,
    first_seen = least(u.first_seen, $obs), last_seen = greatest(u.last_seen, $obs)
WHEN NOT MATCHED THEN INSERT (bookmaker, market_id, reason, name, detail, occurrences, first_seen, last_seen)
    VALUES (b.bookmaker, b.market_id, b.reason, b.name, b.detail, b.occurrences, $obs, $obs)
"""


def write_batch(conn: sa.Connection, batch: BatchWrite, frames: BatchFrames) -> BatchResult:
    """Store ``batch`` (as ``batch_frames``) on ``conn``, the caller's open write transaction.
    ``seconds`` is left 0: the caller knows when its transaction ended."""
    tables = frames.tables
    for name, data in tables.items():
        register(conn, name, data)
    obs = {"obs": to_db_time(batch.observed_at)}
    postgres = is_postgres(conn)
    pairs = frames.pairs
    priced = event_prices(conn, pairs)
    current = current_rows(priced, pairs)
    diff = diff_prices(frames.prices, current, obs["obs"])
    # Alerts: the rules need only the diff and the prices before it, so they run on a worker
    # thread while the statements below do (their alerts are written before the commit).
    alerts = start_evaluation(conn, batch, diff, current)
    if tables["_b_events"].height:
        run(conn, _EVENTS, obs)
    if tables["_b_book_events"].height:
        run(conn, _BOOK_EVENTS, obs)
    counts = dict(diff["state"].value_counts().iter_rows())
    new, same, changed, gone = (counts.get(k, 0) for k in ("new", "same", "changed", "gone"))
    unchanged = pl.col("state") == "same"
    changes = diff.filter(~unchanged)
    register(conn, "_b_diff", changes if postgres else diff)
    if new + changed + gone:
        register(conn, "_b_history", changes.with_columns(
            observed_at=pl.lit(obs["obs"], pl.Datetime("us")), run_id=pl.lit(batch.run_id, pl.Int64),
        ).select(list(HISTORY_SCHEMA)))
        known = changes["sr_id"].unique().is_in(priced["sr_id"].unique()).all()  # events with a history number
        append_history(conn, "_b_history", numbered=new + changed + gone if known else None)
        unregister(conn, "_b_history")
    if same and postgres:
        key = list(PRICE_KEY)
        register(conn, "_b_keep", priced.select(key).join(diff.filter(unchanged).select(key), on=key, how="anti"))
        run(conn, f"CREATE INDEX ON _b_keep ({', '.join(key)})")
        run(conn, _SEEN_AGAIN[True], obs | {"events": pairs["sr_id"].unique().to_list()})
        unregister(conn, "_b_keep")
    elif same:
        run(conn, _SEEN_AGAIN[False], obs)
    if changed + gone:
        run(conn, _UPDATE_CURRENT.format(row=_ROW[postgres]), obs)
    if new:
        run(conn, _INSERT_CURRENT, obs)
    if tables["_b_statuses"].height:
        run(conn, _STATUSES, obs | {"run": batch.run_id})
    if tables["_b_unmapped"].height:
        run(conn, _UNMAPPED, obs)
    for name in (*tables, "_b_diff"):
        unregister(conn, name)
    result = BatchResult(prices=frames.prices.height, inserted=new, changed=changed,
                         history_rows=new + changed + gone, became_unavailable=gone, seconds=0.0)
    finish_evaluation(conn, alerts)
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
