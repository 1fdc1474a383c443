"""Margin analytics over a period: each book's margin rebuilt from the change log, and how
often each book re-prices. The computation behind ``Store.margin_analytics`` and the hourly
rollups (``rollups.py``), and the pure roll-ups the margin page draws from its result.

Rebuilding a market from its changes
====================================
``odds_history`` holds a row each time a price's odds or availability changed (the first row
of a price is its first sighting), so a market's outcome set *as of* a change is the latest row
of each of its outcomes at or before it. One window per price turns its rows into deltas (its
1/odds minus its previous 1/odds; +1 when first seen; ±1 when suspended or restored; ±1 when
its odds turn invalid or valid again); a running sum of those deltas per market instance (event
× book × market × line, in time order) is the instance's Σ 1/odds, outcomes seen, outcomes
suspended and invalid prices after every change. That is two sorted passes over the rows,
instead of a join of every change with every outcome of its market.

The margin is ``engine.markets.margins``' rule evaluated on those counts with that module's own
outcome table (``outcome_rules``): a margin exists only for an ``exclusive`` or
``double_cover`` set in which every outcome of the book's set is present, none is unknown or
suspended and every odds is above 1; margin = (Σ 1/odds ÷ covers − 1) × 100, covers = 2 for
double chance. ``tests/test_margin_analytics.py`` checks it against ``add_margins`` snapshot
by snapshot.

Time-weighted, not snapshot-averaged
====================================
Each state counts for as long as it stood: from its change to the instance's next change, the
event's kickoff (pre-match prices end there), the slice's end or now, whichever is first;
the state a market was in when the slice began is carried in from before it (``opening``: each
price's latest row before the slice). A snapshot average would weight every market by how often
its book re-prices it — a book that moves a lot would have its busy hours counted many times and
its quiet days once, mixing the margin up with the change frequency shown next to it. The time
weight is the margin a bettor met at a random moment of the period. It also splits a state
exactly across the time-to-kickoff buckets and the UTC hours it spans, so no boundary needs a
tie rule, and the sums of consecutive slices are the sums of their union: that is what lets
``rollups.py`` keep them per hour. ``margin_states`` is the one count that is not additive
(a state spanning two slices opens the second), so each slice reports the states begun by a
change inside it and, apart, the ``opening_states`` it carried in; only the first slice of a
period counts the latter.

Where it runs
=============
The database gives frames (``read_*``: integer keys straight from ``odds_history_data`` — the
view's per-row join to the key tables costs more than the arithmetic); ``compute`` does the
arithmetic on its own in-memory DuckDB connection, so the store's lock is held only for the
reads. An instance with no row in the slice skips the windows: one state, its carried-in sums.
Cost (``benchmarks/margins.py``, 2 shared cores): a week of the 30.8M-row store rebuilt live in
~11 s (31 s through the view with string keys); its hours rolled up once in ~45 s.

Caveats: a price whose first sighting was deleted by retention and that has not changed since
leaves its market incomplete (no margin) until it does.

The result is additive sums — margin × seconds, seconds, changes, price-seconds — per book ×
market × tournament, and per book × market × bucket, so every view the page offers (all
markets or some, by tournament, country, market or bucket) is a polars group-by of one read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import polars as pl
import sqlalchemy as sa

from engine.config import BOOKS
from engine.markets.margins import DOUBLE_COVER, EXCLUSIVE, outcome_rules
from engine.store.db import db_frame, is_postgres

HOUR = timedelta(hours=1)

#: Time to kickoff buckets, farthest first: (label, from, to) in hours before kickoff.
BUCKETS: tuple[tuple[str, float, float], ...] = (
    (">48 h", 48, 1e6), ("24–48 h", 24, 48), ("12–24 h", 12, 24), ("6–12 h", 6, 12),
    ("3–6 h", 3, 6), ("1–3 h", 1, 3), ("<1 h", 0, 1),
)
BUCKET_ORDER: tuple[str, ...] = tuple(b[0] for b in BUCKETS)

CELL_KEYS = ["bookmaker", "market", "country", "tournament"]
CELL_SCHEMA: dict[str, pl.DataType] = {
    "bookmaker": pl.String, "market": pl.String, "country": pl.String, "tournament": pl.String,
    "margin_x_seconds": pl.Float64,  # Σ margin × seconds over the states that had a margin
    "margin_seconds": pl.Float64,  # Σ seconds of those states
    "seconds": pl.Float64,  # Σ seconds of every state, with a margin or not
    "margin_states": pl.Int64,  # states with a margin (the opening state of the period included)
    "changes": pl.Int64,  # history rows that changed a price seen before (odds or availability)
    "odds_changes": pl.Int64,  # of those, the ones whose odds moved
    "price_seconds": pl.Float64,  # Σ seconds × available prices: the exposure the change rate is per
}
#: A slice's cells: ``margin_states`` only those begun inside it, the carried-in ones apart.
SLICE_SCHEMA: dict[str, pl.DataType] = {**CELL_SCHEMA, "opening_states": pl.Int64}
BUCKET_SCHEMA: dict[str, pl.DataType] = {
    "bookmaker": pl.String, "market": pl.String, "bucket": pl.String,
    "margin_x_seconds": pl.Float64, "margin_seconds": pl.Float64,
}

#: Counters summed per change: each is a base-2^15 digit of one BIGINT (a sum of these is the
#: sum of each digit as long as every running count stays below 2^15 = outcomes of a market),
#: so one wide hash aggregate carries four of them: first sightings of known and unknown
#: outcomes, suspensions (+1 suspended, -1 restored) and invalid odds (+1 / -1).
_DIGITS = {"known": 0, "unknown": 15, "down": 30, "bad": 45}


def _digit(name: str, expr: str) -> str:
    return f"({expr})::BIGINT * {1 << _DIGITS[name]}"


def _count(name: str, packed: str) -> str:
    return f"(({packed} >> {_DIGITS[name]}) & 32767)"


# --- the computation, on frames -----------------------------------------------------------------
# Inputs, registered on compute's own connection:
#   _opening(event_no, kind_id, odds, available)          each price's latest row before $start
#   _rows(event_no, kind_id, odds, available, observed_at) the rows of [$start, $stop)
#   _events(event_no, kickoff, country, tournament)        the events in scope
#   _kinds(kind_id, inst, bookmaker, market, known, kind, n_outcomes)  the prices in scope

_VALID = "(isfinite({0}) AND {0} > 1)"

#: The prices in scope keyed by instance (g: event × book × market × line) and price (k).
_KEYED = """
CREATE TEMP TABLE _opening_g AS
SELECT (o.event_no::BIGINT << 32) | k.inst AS g, (o.event_no::BIGINT << 32) | o.kind_id AS k, o.odds, o.available, k.known
FROM _opening o JOIN _kinds k USING (kind_id) WHERE o.event_no IN (SELECT event_no FROM _events);
CREATE TEMP TABLE _rows_g AS
SELECT (r.event_no::BIGINT << 32) | k.inst AS g, (r.event_no::BIGINT << 32) | r.kind_id AS k, r.observed_at,
       r.odds, r.available, k.known
FROM _rows r JOIN _kinds k USING (kind_id)
WHERE r.observed_at >= $start AND r.observed_at < $stop AND r.event_no IN (SELECT event_no FROM _events);
CREATE TEMP TABLE _moving AS SELECT DISTINCT g FROM _rows_g;
"""

#: Per instance (g) and change time (t): the deltas of its prices' rows, each price's state at
#: $start carried in as a first row at $start (ordered before a change at exactly $start);
#: ``changed``: a real row (not only the carried-in state) is at t. ``d_changes`` packs changes
#: (rows after a price's first) + odds changes << 32. An instance with no row in the slice has
#: one state, its carried-in sums: no window for it.
_STEPS = f"""
CREATE TEMP TABLE _steps AS
WITH prices AS (
    SELECT g, k, CAST($start AS TIMESTAMP) AS observed_at, odds, available, known, 0 AS inside
    FROM _opening_g WHERE g IN (SELECT g FROM _moving)
    UNION ALL
    SELECT g, k, observed_at, odds, available, known, 1 AS inside FROM _rows_g
), lagged AS (
    SELECT g, observed_at AS t, inside, odds, available, known, {_VALID.format("odds")} AS valid,
           lag(odds) OVER w AS was_odds, lag(available) OVER w AS was_available
    FROM prices WINDOW w AS (PARTITION BY k ORDER BY observed_at, inside)
), deltas AS (
    SELECT g, t, inside,
           CASE WHEN valid THEN 1 / odds ELSE 0 END
             - CASE WHEN {_VALID.format("was_odds")} THEN 1 / was_odds ELSE 0 END AS d_inv,
           {_digit("known", "was_odds IS NULL AND known")}
             + {_digit("unknown", "was_odds IS NULL AND NOT known")}
             + {_digit("down", "(NOT available)::INT - coalesce((NOT was_available)::INT, 0)")}
             + {_digit("bad", f"(NOT valid)::INT - coalesce((NOT {_VALID.format('was_odds')})::INT, 0)")}
             AS d_counts,
           CASE WHEN was_odds IS NULL THEN 0 WHEN was_odds <> odds THEN {(1 << 32) + 1} ELSE 1 END AS d_changes
    FROM lagged
)
SELECT g, t, sum(d_inv) AS d_inv, sum(d_counts)::BIGINT AS d_counts, sum(d_changes)::BIGINT AS d_changes,
       max(inside) = 1 AS changed
FROM deltas GROUP BY g, t
UNION ALL
SELECT g, CAST($start AS TIMESTAMP) AS t, sum(CASE WHEN {_VALID.format("odds")} THEN 1 / odds ELSE 0 END) AS d_inv,
       sum({_digit("known", "known")} + {_digit("unknown", "NOT known")} + {_digit("down", "NOT available")}
           + {_digit("bad", f"NOT {_VALID.format('odds')}")})::BIGINT AS d_counts,
       0::BIGINT AS d_changes, false AS changed
FROM _opening_g WHERE g NOT IN (SELECT g FROM _moving) GROUP BY g
"""

#: What each instance is: its event's kickoff and tournament (``tid``), its book × market
#: (``bm``), and the kind of its outcome set. Small integers to group by; names at the end.
_INSTANCES = """
CREATE TEMP TABLE _tournaments AS
SELECT row_number() OVER (ORDER BY country, tournament)::INTEGER AS tid, country, tournament
FROM (SELECT DISTINCT country, tournament FROM _events);
CREATE TEMP TABLE _books_markets AS
SELECT row_number() OVER (ORDER BY bookmaker, market)::INTEGER AS bm, bookmaker, market, kind, n_outcomes
FROM (SELECT DISTINCT bookmaker, market, kind, n_outcomes FROM _kinds);
CREATE TEMP TABLE _instances AS
SELECT s.g, e.kickoff, t.tid, b.bm, b.kind, b.n_outcomes
FROM (SELECT DISTINCT g FROM _steps) s
JOIN _events e ON e.event_no = (s.g >> 32)
JOIN _tournaments t USING (country, tournament)
JOIN (SELECT DISTINCT inst, bookmaker, market FROM _kinds) i ON i.inst = (s.g & 4294967295)
JOIN _books_markets b USING (bookmaker, market);
"""


def _overlap(lo: float, hi: float) -> str:
    """Seconds of the piece [a, b) that lie between ``hi`` and ``lo`` seconds before kickoff."""
    return f"greatest(least(ko - a_s, {hi}) - greatest(ko - b_s, {lo}), 0)"


#: A state's pieces: one per UTC hour it spans (``hourly``), or the whole state in one slice.
_HOURLY = ("unnest(generate_series(date_trunc('hour', t), until - INTERVAL 1 MICROSECOND, INTERVAL 1 HOUR)) AS slice",
           "slice + INTERVAL 1 HOUR")
_WHOLE = ("CAST($start AS TIMESTAMP) AS slice", "CAST($stop AS TIMESTAMP)")

#: Every state of every instance before kickoff, with how long it stood and its margin (or
#: null), cut into slices and summed per slice × book × market × tournament, with the margin
#: time split into BUCKETS. A piece ``begun`` starts with a change; the others were carried in.
_WIDE = f"""
CREATE TEMP TABLE _wide AS
WITH totals AS (
    SELECT g, t, changed, d_changes, sum(d_inv) OVER w AS s_inv, sum(d_counts) OVER w AS counts,
           lead(t) OVER w AS next_t
    FROM _steps
    WINDOW w AS (PARTITION BY g ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), states AS (
    SELECT i.tid, i.bm, i.kickoff, s.t, s.changed,
           least(coalesce(s.next_t, i.kickoff), i.kickoff, CAST($stop AS TIMESTAMP)) AS until,
           {_count("known", "s.counts")} AS n_known, {_count("unknown", "s.counts")} AS n_unknown,
           {_count("down", "s.counts")} AS n_down, {_count("bad", "s.counts")} AS n_bad,
           s.d_changes & 4294967295 AS changes, s.d_changes >> 32 AS odds_changes, s.s_inv, i.kind, i.n_outcomes
    FROM totals s JOIN _instances i USING (g)
    WHERE s.t < i.kickoff
), margins AS (
    SELECT *,
           CASE WHEN kind IN ('{EXCLUSIVE}', '{DOUBLE_COVER}') AND n_unknown = 0 AND n_known = n_outcomes
                     AND n_down = 0 AND n_bad = 0
                THEN (s_inv / CASE WHEN kind = '{DOUBLE_COVER}' THEN 2 ELSE 1 END - 1) * 100 END AS margin
    FROM states
), sliced AS (
    SELECT *, {{slice}} FROM margins
), pieces AS (
    SELECT *, greatest(t, slice) AS a, least(until, {{slice_end}}) AS b FROM sliced
), timed AS (
    SELECT *, epoch(a) AS a_s, epoch(b) AS b_s, epoch(kickoff) AS ko, a = t AS first_piece,
           a = t AND changed AS begun
    FROM pieces
)
SELECT slice AS hour, tid, bm,
       coalesce(sum(margin * (b_s - a_s)), 0) AS margin_x_seconds,
       coalesce(sum(b_s - a_s) FILTER (WHERE margin IS NOT NULL), 0) AS margin_seconds,
       sum(b_s - a_s) AS seconds,
       count(margin) FILTER (WHERE begun) AS margin_states,
       count(margin) FILTER (WHERE NOT begun) AS opening_states,
       coalesce(sum(changes) FILTER (WHERE first_piece), 0)::BIGINT AS changes,
       coalesce(sum(odds_changes) FILTER (WHERE first_piece), 0)::BIGINT AS odds_changes,
       sum((n_known + n_unknown - n_down) * (b_s - a_s)) AS price_seconds,
       {", ".join(f"coalesce(sum(margin * {_overlap(lo * 3600, hi * 3600)}), 0) AS b{i}_x, "
                  f"coalesce(sum({_overlap(lo * 3600, hi * 3600)}) FILTER (WHERE margin IS NOT NULL), 0) AS b{i}_s"
                  for i, (_, lo, hi) in enumerate(BUCKETS))}
FROM timed GROUP BY ALL
"""

#: The slices' cells (``SLICE_SCHEMA`` + hour) and buckets (``BUCKET_SCHEMA`` + hour, margin time only).
_SLICE_CELLS = f"""
SELECT w.hour, b.bookmaker, b.market, t.country, t.tournament,
       {", ".join(c for c in SLICE_SCHEMA if c not in CELL_KEYS)}
FROM _wide w JOIN _tournaments t USING (tid) JOIN _books_markets b USING (bm)
"""
_SLICE_BUCKETS = f"""
SELECT hour, bookmaker, market, bucket, sum(x) AS margin_x_seconds, sum(s) AS margin_seconds
FROM (
    SELECT w.hour, b.bookmaker, b.market, unnest([{", ".join(repr(label) for label in BUCKET_ORDER)}]) AS bucket,
           unnest([{", ".join(f"b{i}_x" for i in range(len(BUCKETS)))}]) AS x,
           unnest([{", ".join(f"b{i}_s" for i in range(len(BUCKETS)))}]) AS s
    FROM _wide w JOIN _books_markets b USING (bm)
) GROUP BY ALL HAVING sum(s) > 0
"""

#: Each price's latest row at $stop (of the events still to kick off then): the next slice's opening.
_CARRIED = """
SELECT event_no, kind_id, arg_max(odds, seen) AS odds, arg_max(available, seen) AS available
FROM (
    SELECT event_no, kind_id, odds, available, 0 AS seen FROM _opening
    UNION ALL
    SELECT event_no, kind_id, odds, available, epoch_us(observed_at) AS seen FROM _rows
    WHERE observed_at >= $start AND observed_at < $stop
) WHERE event_no IN (SELECT event_no FROM _events WHERE kickoff > $stop)
GROUP BY event_no, kind_id
"""


@dataclass(frozen=True)
class Inputs:
    """What ``compute`` works on (the ``read_*`` frames), all times naive UTC."""

    rows: pl.DataFrame
    opening: pl.DataFrame
    events: pl.DataFrame
    kinds: pl.DataFrame


@dataclass(frozen=True)
class Sums:
    """``compute``'s result: ``cells`` (``hour`` + ``SLICE_SCHEMA``) and ``buckets`` (``hour`` +
    ``BUCKET_SCHEMA``) per slice, and, when asked for, each price's state at the end."""

    cells: pl.DataFrame
    buckets: pl.DataFrame
    carried: pl.DataFrame | None = None


OPENING_SCHEMA: dict[str, pl.DataType] = {"event_no": pl.Int32, "kind_id": pl.Int32, "odds": pl.Float64,
                                          "available": pl.Boolean}


def _sql_params(sql: str, params: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def compute(inputs: Inputs, start: datetime, stop: datetime, hourly: bool = False, carry: bool = False) -> Sums:
    """The sums of [start, stop) — per UTC hour (``hourly``; ``start`` must be a whole hour) or
    as one slice whose ``hour`` is ``start`` — on a private in-memory DuckDB connection; with
    ``carry``, also each price's latest row at ``stop`` (the opening of the slice after)."""
    hour = {"hour": pl.Datetime("us")}
    if start >= stop or inputs.kinds.is_empty() or inputs.events.is_empty():
        return Sums(pl.DataFrame(schema={**hour, **SLICE_SCHEMA}), pl.DataFrame(schema={**hour, **BUCKET_SCHEMA}),
                    pl.DataFrame(schema=OPENING_SCHEMA) if carry else None)
    slice_, slice_end = _HOURLY if hourly else _WHOLE
    params: dict[str, object] = {"start": start, "stop": stop}
    con = duckdb.connect()
    try:
        for name in ("rows", "opening", "events", "kinds"):
            con.register(f"_{name}", getattr(inputs, name).to_arrow())
        for script in (_KEYED, _STEPS, _INSTANCES, _WIDE.format(slice=slice_, slice_end=slice_end)):
            for sql in filter(str.strip, script.split(";")):
                con.execute(sql, _sql_params(sql, params) or None)

        def read(sql: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
            return con.sql(sql, params=_sql_params(sql, params) or None).pl().cast(schema)  # type: ignore[arg-type]

        return Sums(read(_SLICE_CELLS, {**hour, **SLICE_SCHEMA}), read(_SLICE_BUCKETS, {**hour, **BUCKET_SCHEMA}),
                    read(_CARRIED, OPENING_SCHEMA) if carry else None)
    finally:
        con.close()


def opening_counted(cells: pl.DataFrame, opens_period: bool) -> pl.DataFrame:
    """A slice's cells in ``CELL_SCHEMA``: its carried-in states count only if the slice opens the
    period (a state carried into a later slice was already counted where it began)."""
    states = pl.col("margin_states") + (pl.col("opening_states") if opens_period else 0)
    return cells.with_columns(states.alias("margin_states")).select(list(CELL_SCHEMA)).cast(CELL_SCHEMA)  # type: ignore[arg-type]


def empty_result() -> dict[str, pl.DataFrame]:
    return {"cells": pl.DataFrame(schema=CELL_SCHEMA), "buckets": pl.DataFrame(schema=BUCKET_SCHEMA)}


def combine(cells: Sequence[pl.DataFrame], buckets: Sequence[pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Parts of a period (``CELL_SCHEMA`` / ``BUCKET_SCHEMA`` frames: event chunks, live slices,
    rolled-up hours) summed: the period's ``cells`` and ``buckets``."""
    cells = [c.select(list(CELL_SCHEMA)).cast(CELL_SCHEMA) for c in cells if c.height]  # type: ignore[arg-type]
    buckets = [b.select(list(BUCKET_SCHEMA)).cast(BUCKET_SCHEMA) for b in buckets if b.height]  # type: ignore[arg-type]
    if not cells:
        return empty_result()
    bucket_keys = ["bookmaker", "market", "bucket"]
    summed = pl.concat(cells).group_by(CELL_KEYS).agg(pl.exclude(CELL_KEYS).sum()).sort(CELL_KEYS)
    by_bucket = (pl.concat(buckets).group_by(bucket_keys).agg(pl.exclude(bucket_keys).sum())
                 .sort(bucket_keys) if buckets else pl.DataFrame(schema=BUCKET_SCHEMA))
    return {"cells": summed.select(list(CELL_SCHEMA)).cast(CELL_SCHEMA),  # type: ignore[arg-type]
            "buckets": by_bucket.select(list(BUCKET_SCHEMA)).cast(BUCKET_SCHEMA)}  # type: ignore[arg-type]


def event_chunks(ids: Sequence, size: int) -> list[tuple]:
    """Sorted ``ids`` cut into (first, last) ranges of at most ``size`` ids: a computation cut by
    event is one short read per range, and the sums of the ranges add up (instances never span
    events)."""
    ordered = sorted(set(ids))
    return [(ordered[i], ordered[min(i + size, len(ordered)) - 1]) for i in range(0, len(ordered), size)]


# --- reads (on a store connection, under its lock) ----------------------------------------------

#: The events still to kick off at $start, by history number.
SCOPE = ("SELECT h.event_no FROM history_events h JOIN events e USING (sr_id) "
         "WHERE e.kickoff > $start AND h.event_no BETWEEN $first AND $last")
_ALL = (-(2**31), 2**31 - 1)


def read_events(conn: sa.Connection, start: datetime) -> pl.DataFrame:
    """The events a computation from ``start`` covers (those not kicked off by then)."""
    return db_frame(conn, """
        SELECT h.event_no, e.kickoff, e.country, e.tournament
        FROM history_events h JOIN events e USING (sr_id) WHERE e.kickoff > $start ORDER BY h.event_no""",
                    {"start": start})


def read_kinds(conn: sa.Connection, markets: Sequence[str] | None = None) -> pl.DataFrame:
    """Every price kind with its instance number (book × market × line), whether its outcome
    is one the book's set knows, and its set's kind and size (``outcome_rules``)."""
    kinds = db_frame(conn, """
        SELECT kind_id, dense_rank() OVER (ORDER BY bookmaker, market, line)::INTEGER AS inst,
               bookmaker, market, outcome
        FROM price_kinds""")
    if kinds.is_empty():
        return pl.DataFrame(schema={"kind_id": pl.Int32, "inst": pl.Int32, "bookmaker": pl.String, "market": pl.String,
                                    "known": pl.Boolean, "kind": pl.String, "n_outcomes": pl.Int64})
    if markets is not None:
        kinds = kinds.filter(pl.col("market").is_in(list(markets)))
    rules = outcome_rules()
    known = rules.select("market", "bookmaker", "outcome", pl.lit(True).alias("known")).unique()
    sets = rules.select("market", "bookmaker", "kind", "n_outcomes").unique()
    return (kinds.join(known, on=["market", "bookmaker", "outcome"], how="left")
            .join(sets, on=["market", "bookmaker"], how="left")
            .select("kind_id", "inst", "bookmaker", "market", pl.col("known").fill_null(False), "kind", "n_outcomes"))


def read_rows(conn: sa.Connection, start: datetime, stop: datetime, events: tuple[int, int] = _ALL) -> pl.DataFrame:
    """History rows of [start, stop) of the events in scope (numbers within ``events``)."""
    return db_frame(conn, f"""
        SELECT event_no, kind_id, odds, available, observed_at FROM odds_history_data
        WHERE observed_at >= $start AND observed_at < $stop AND event_no BETWEEN $first AND $last
          AND event_no IN ({SCOPE})""",
                    {"start": start, "stop": stop, "first": events[0], "last": events[1]})


def read_opening(conn: sa.Connection, start: datetime, events: tuple[int, int] = _ALL) -> pl.DataFrame:
    """Each price's latest row before ``start``, of the events in scope: history is clustered by
    event then time, so a range of events is a few row groups. PostgreSQL has no ``arg_max``:
    ``DISTINCT ON`` walks its (event_no, kind_id, observed_at) index instead."""
    where = f"observed_at < $start AND event_no BETWEEN $first AND $last AND event_no IN ({SCOPE})"
    sql = (f"""
        SELECT DISTINCT ON (event_no, kind_id) event_no, kind_id, odds, available FROM odds_history_data
        WHERE {where} ORDER BY event_no, kind_id, observed_at DESC""" if is_postgres(conn) else f"""
        SELECT event_no, kind_id, arg_max(odds, observed_at) AS odds, arg_max(available, observed_at) AS available
        FROM odds_history_data WHERE {where} GROUP BY event_no, kind_id""")
    return db_frame(conn, sql, {"start": start, "first": events[0], "last": events[1]})


# --- roll-ups (pure) ---------------------------------------------------------------------------


def _markets(frame: pl.DataFrame, markets: Sequence[str] | None) -> pl.DataFrame:
    return frame if markets is None else frame.filter(pl.col("market").is_in(list(markets)))


def _average() -> pl.Expr:
    seconds = pl.col("margin_seconds")
    return pl.when(seconds > 0).then(pl.col("margin_x_seconds") / seconds).alias("margin_pct")


def margin_by(cells: pl.DataFrame, by: Sequence[str], markets: Sequence[str] | None = None) -> pl.DataFrame:
    """Time-weighted average margin per book and ``by`` (e.g. ``["market"]``, ``["country"]``,
    ``["country", "tournament"]``, or none for the book overall), with its hours and states.
    Groups that never had a complete market in the period are left out."""
    keys = ["bookmaker", *by]
    rolled = _markets(cells, markets).group_by(keys).agg(
        pl.col("margin_x_seconds").sum(), pl.col("margin_seconds").sum(), pl.col("margin_states").sum())
    return rolled.filter(pl.col("margin_seconds") > 0).select(
        *keys, _average(), (pl.col("margin_seconds") / 3600).alias("hours"), "margin_states",
    ).sort(keys)


def margin_by_bucket(buckets: pl.DataFrame, markets: Sequence[str] | None = None) -> pl.DataFrame:
    """Time-weighted average margin per book and time-to-kickoff bucket, farthest bucket first."""
    rolled = _markets(buckets, markets).group_by("bookmaker", "bucket").agg(
        pl.col("margin_x_seconds").sum(), pl.col("margin_seconds").sum())
    order = {b: i for i, b in enumerate(BUCKET_ORDER)}
    return rolled.filter(pl.col("margin_seconds") > 0).select(
        "bookmaker", "bucket", _average(), (pl.col("margin_seconds") / 3600).alias("hours"),
    ).sort(pl.col("bucket").replace_strict(order, return_dtype=pl.Int64), "bookmaker")


def change_rates(cells: pl.DataFrame, by: Sequence[str] = (), markets: Sequence[str] | None = None) -> pl.DataFrame:
    """How often each book (and ``by``) re-prices: odds changes per available price per hour.

    ``price_hours`` is the time prices were on offer summed over prices, so a book quoting more
    markets is not counted as busier for it; ``other_changes`` are suspensions and restores
    that left the odds as they were.
    """
    keys = ["bookmaker", *by]
    rolled = _markets(cells, markets).group_by(keys).agg(
        pl.col("odds_changes").sum(), pl.col("changes").sum(), pl.col("price_seconds").sum())
    hours = pl.col("price_seconds") / 3600
    return rolled.filter(pl.col("price_seconds") > 0).select(
        *keys,
        pl.col("odds_changes"),
        (pl.col("changes") - pl.col("odds_changes")).alias("other_changes"),
        hours.alias("price_hours"),
        (pl.col("odds_changes") / hours).alias("changes_per_price_hour"),
    ).sort(keys)


def wide_by_book(frame: pl.DataFrame, index: Sequence[str], value: str, reference: str = "betpawa") -> pl.DataFrame:
    """One row per ``index``, one ``value`` column per book (``BOOKS`` order, null where a book
    has none) and ``gap``: the reference book's value minus the lowest competitor's (for a
    margin, how much dearer BetPawa is than the cheapest other book, in points)."""
    keys = list(index)
    wide = (frame.pivot(on="bookmaker", index=keys, values=value, aggregate_function="first")
            if frame.height else pl.DataFrame(schema={k: frame.schema[k] for k in keys}))
    wide = wide.with_columns([pl.lit(None, pl.Float64).alias(b) for b in BOOKS if b not in wide.columns])
    others = [pl.col(b) for b in BOOKS if b != reference]
    return wide.select(*keys, *BOOKS, (pl.col(reference) - pl.min_horizontal(others)).alias("gap")).sort(keys)
