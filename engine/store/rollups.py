"""Hourly margin rollups: the margin page sums hours instead of rebuilding a week from history.

``analytics.compute`` cuts every market state at UTC hour boundaries, and its sums of
consecutive slices add up to the sums of their union, so each completed hour is computed once
and kept in ``margin_rollup`` (schema step 5: one row per hour × cell and per hour × bucket).
A period is then its rolled-up whole hours (one grouped read) plus what is left — the current
partial hour, hours the scheduler has not reached, a start or end inside an hour — computed
live (``margin_analytics``). With no rollups at all (a fresh database, tests) the live part is
the whole period: the same numbers, only slower.

Building them (``roll_up``, from the scheduler, under its cycle lock): the hours since the
history retention's start that are complete and not rolled up yet, in windows of
``WINDOW_HOURS``. A window is a few reads under the shared lock (its rows, by event ranges of
about ``ROWS_PER_CHUNK`` rows), arithmetic outside any lock, and one short write of its rows
and hour marks. Each window starts from the state the previous one ended with (carried in
memory), the first from ``margin_rollup_state`` — the latest row of every price as of the last
hour rolled up, written with that hour — and only failing both from an ``arg_max`` over the
history before it. That state also opens the page's live remainder, so neither ever re-reads
all history.

Staying right when history changes under them:

* Imports (``Store.import_history``) can add rows to hours already rolled up, and a row changes
  every later hour of its event (the state carries on). The import's transaction therefore
  deletes the rollups of every hour from the import's earliest row on, and the state if that
  row is older than it (``invalidate``); the next run rebuilds them, the page computes them
  live meanwhile.
* A batch written while a window is computed (a cycle outside the scheduler's lock, say
  ``oddsdesk scrape --once``): the window's write re-counts the window's history rows and drops
  the window if they changed; the next run computes it again.
* Retention: ``maintenance.delete_old`` deletes the rollups of hours before its cutoff.
* Rolled-up hours keep the kickoff, country and tournament an event had when they were rolled up.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
import sqlalchemy as sa

from engine.store import analytics
from engine.store.analytics import HOUR, Inputs
from engine.store.db import Database, db_frame, duck, from_db_time, register, to_db_time, utcnow
from engine.store.schema import margin_rollup_hours, store_state

log = logging.getLogger("oddsdesk.store.rollups")

#: Hours per window of ``roll_up``: each is one write, and what a run's time budget is checked by.
WINDOW_HOURS = 6
#: History rows (plus carried-in prices) per read and per ``compute``: about 0.5 s of reading
#: under the shared lock and 100–200 MB of memory.
ROWS_PER_CHUNK = 4_000_000
STATE_KEY = "margin_rollup_state_at"


@dataclass(frozen=True)
class RollupReport:
    """What one ``roll_up`` did: hours rolled up, hours still to do (its budget ran out),
    windows dropped because history changed while they were computed, and its duration."""

    hours: int
    left: int
    dropped: int
    seconds: float


@dataclass(frozen=True)
class RollupStatus:
    """Hours rolled up, when the last was (aware UTC), and the end of the latest one."""

    hours: int
    rolled_at: datetime | None
    through: datetime | None


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floor = floor_hour(value)
    return floor if floor == value else floor + HOUR


def windows(hours: Sequence[datetime], size: int = WINDOW_HOURS) -> list[tuple[datetime, datetime]]:
    """Consecutive runs of ``hours`` cut into [start, end) windows of at most ``size`` hours."""
    out: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if out and out[-1][1] == hour and out[-1][1] - out[-1][0] < size * HOUR:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


# --- the tables (on a store connection) ---------------------------------------------------------


def rolled_hours(conn: sa.Connection, start: datetime, stop: datetime) -> list[datetime]:
    """The rolled-up hours wholly inside [start, stop)."""
    found = db_frame(conn, "SELECT hour FROM margin_rollup_hours WHERE hour >= $start AND hour <= $last ORDER BY hour",
                     {"start": start, "last": stop - HOUR})
    return found["hour"].to_list() if found.height else []


def rolled_sums(conn: sa.Connection, start: datetime, stop: datetime,
                markets: Sequence[str] | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rolled-up hours of [start, stop) summed: (cells, buckets); the states carried into
    an hour count only for the hour that opens the period."""
    params: dict[str, object] = {"start": start, "last": stop - HOUR}
    market_filter = ""
    if markets is not None:
        params |= {f"m{i}": m for i, m in enumerate(markets)}
        market_filter = f"AND market IN ({', '.join(f'$m{i}' for i in range(len(markets)))})"
    where = f"hour >= $start AND hour <= $last {market_filter}"
    cells = db_frame(conn, f"""
        SELECT bookmaker, market, country, tournament, sum(margin_x_seconds) AS margin_x_seconds,
               sum(margin_seconds) AS margin_seconds, sum(seconds) AS seconds,
               (sum(margin_states) + coalesce(sum(opening_states) FILTER (WHERE hour = $start), 0))::BIGINT AS margin_states,
               sum(changes)::BIGINT AS changes, sum(odds_changes)::BIGINT AS odds_changes,
               sum(price_seconds) AS price_seconds
        FROM margin_rollup WHERE grain = 'cell' AND {where} GROUP BY ALL""", params)
    buckets = db_frame(conn, f"""
        SELECT bookmaker, market, bucket, sum(margin_x_seconds) AS margin_x_seconds,
               sum(margin_seconds) AS margin_seconds
        FROM margin_rollup WHERE grain = 'bucket' AND {where} GROUP BY ALL""", params)
    return cells, buckets


def pending_hours(conn: sa.Connection, since: datetime, before: datetime) -> list[datetime]:
    """Whole hours from ``since`` (or the first history) that end by ``before`` and are not
    rolled up yet."""
    first = db_frame(conn, "SELECT min(observed_at) AS first FROM odds_history_data")["first"][0]
    if first is None:
        return []
    start, stop = max(ceil_hour(since), floor_hour(first)), floor_hour(before)
    done = set(rolled_hours(conn, start, stop)) if start < stop else set()
    hours = [start + n * HOUR for n in range(int((stop - start) / HOUR))] if start < stop else []
    return [h for h in hours if h not in done]


def history_count(conn: sa.Connection, start: datetime, stop: datetime) -> int:
    return int(db_frame(conn, "SELECT count(*) AS n FROM odds_history_data WHERE observed_at >= $start "
                              "AND observed_at < $stop", {"start": start, "stop": stop})["n"][0])


def state_time(conn: sa.Connection) -> datetime | None:
    """When ``margin_rollup_state`` stands (naive UTC), or None."""
    value = conn.execute(sa.select(store_state.c.value).where(store_state.c.key == STATE_KEY)).scalar()
    at = json.loads(value) if value else None
    return datetime.fromisoformat(at) if at else None


def read_state(conn: sa.Connection, start: datetime, events: tuple[int, int]) -> pl.DataFrame:
    """The stored state of the events in scope at ``start`` (``analytics.read_opening``'s shape)."""
    return db_frame(conn, f"""
        SELECT event_no, kind_id, odds, available FROM margin_rollup_state
        WHERE event_no BETWEEN $first AND $last AND event_no IN ({analytics._SCOPE})""",
                    {"start": start, "first": events[0], "last": events[1]})


def _set_state_time(conn: sa.Connection, at: datetime | None) -> None:
    conn.execute(sa.delete(store_state).where(store_state.c.key == STATE_KEY))
    if at is not None:
        conn.execute(sa.insert(store_state).values(key=STATE_KEY, value=json.dumps(at.isoformat()), updated_at=utcnow()))


def write_window(conn: sa.Connection, start: datetime, stop: datetime, cells: pl.DataFrame, buckets: pl.DataFrame,
                 state: pl.DataFrame | None, rolled_at: datetime) -> None:
    """The hours of [start, stop) as rolled up (their rows replaced), in the caller's write
    transaction; with ``state``, it becomes the stored state as of ``stop``."""
    db = duck(conn)
    db.execute("DELETE FROM margin_rollup WHERE hour >= $start AND hour < $stop", {"start": start, "stop": stop})
    db.execute("DELETE FROM margin_rollup_hours WHERE hour >= $start AND hour < $stop", {"start": start, "stop": stop})
    rows = pl.concat([
        cells.with_columns(grain=pl.lit("cell")),
        buckets.with_columns(grain=pl.lit("bucket")),
    ], how="diagonal_relaxed")
    if rows.height:
        register(conn, "_rollup", rows)
        db.execute("""INSERT INTO margin_rollup BY NAME SELECT * FROM _rollup""")
        db.unregister("_rollup")
    hours = int((stop - start) / HOUR)
    conn.execute(sa.insert(margin_rollup_hours), [{"hour": start + n * HOUR, "rolled_at": rolled_at} for n in range(hours)])
    if state is not None:
        db.execute("DELETE FROM margin_rollup_state")
        register(conn, "_state", state.select("event_no", "kind_id", "odds", "available"))
        db.execute("INSERT INTO margin_rollup_state SELECT * FROM _state")
        db.unregister("_state")
        _set_state_time(conn, stop)


def invalidate(conn: sa.Connection, since: datetime) -> int:
    """History from ``since`` on changed (an import): the hours it can change are no longer
    rolled up, nor is the state if it stood after ``since``. In the caller's transaction;
    returns the hours dropped."""
    since = to_db_time(since)
    hour = floor_hour(since)
    db = duck(conn)
    dropped = int(db.execute("DELETE FROM margin_rollup_hours WHERE hour >= ?", [hour]).fetchall()[0][0])
    db.execute("DELETE FROM margin_rollup WHERE hour >= ?", [hour])
    at = state_time(conn)
    if at is not None and since < at:
        db.execute("DELETE FROM margin_rollup_state")
        _set_state_time(conn, None)
    return dropped


def delete_before(conn: sa.Connection, before: datetime) -> int:
    """Retention: the rollups of hours that start before ``before``, and the state of events
    whose history is gone (a new event may take over the number); returns the hours deleted."""
    db = duck(conn)
    db.execute("DELETE FROM margin_rollup WHERE hour < ?", [before])
    db.execute("DELETE FROM margin_rollup_state WHERE event_no NOT IN (SELECT event_no FROM history_events)")
    return int(db.execute("DELETE FROM margin_rollup_hours WHERE hour < ?", [before]).fetchall()[0][0])


def status(conn: sa.Connection) -> RollupStatus:
    hours, rolled_at, last = db_frame(conn, "SELECT count(*), max(rolled_at), max(hour) FROM margin_rollup_hours").row(0)
    return RollupStatus(int(hours), from_db_time(rolled_at), from_db_time(last + HOUR) if last else None)


# --- computing (units of work on the store's Database) ------------------------------------------


def _chunks(db: Database, start: datetime, stop: datetime, carried_rows: int | None) -> tuple[pl.DataFrame, list[tuple[int, int]], int]:
    """The events in scope at ``start``, cut into event ranges of about ``ROWS_PER_CHUNK`` rows
    to read (those of [start, stop), plus ``carried_rows`` or, when None, all history before
    ``start``), and the count of history rows in [start, stop)."""
    with db.read() as conn:
        events = analytics.read_events(conn, start)
        inside = history_count(conn, start, stop)
        before = carried_rows if carried_rows is not None else history_count(conn, datetime.min, start)
    parts = max(1, math.ceil((inside + before) / ROWS_PER_CHUNK))
    size = max(1, math.ceil(events.height / parts))
    return events, analytics.event_chunks(events["event_no"].to_list(), size), inside


def _opening(conn: sa.Connection, start: datetime, chunk: tuple[int, int], state_at: datetime | None) -> pl.DataFrame:
    return read_state(conn, start, chunk) if state_at == start else analytics.read_opening(conn, start, chunk)


def _state_rows(db: Database) -> tuple[datetime | None, int]:
    with db.read() as conn:
        at = state_time(conn)
        return at, int(db_frame(conn, "SELECT count(*) AS n FROM margin_rollup_state")["n"][0]) if at else 0


def margin_analytics(db: Database, start: datetime, end: datetime, markets: Sequence[str] | None,
                     now: datetime) -> dict[str, pl.DataFrame]:
    """[start, min(end, now)): the rolled-up hours inside it summed, the rest computed live."""
    start, stop = to_db_time(start), min(to_db_time(end), to_db_time(now))
    if start >= stop or (markets is not None and not markets):
        return analytics.empty_result()
    with db.read() as conn:
        hours = rolled_hours(conn, start, stop)
        cells, buckets = rolled_sums(conn, start, stop, markets) if hours else (pl.DataFrame(), pl.DataFrame())
        kinds = analytics.read_kinds(conn, markets)
    all_cells, all_buckets = [cells], [buckets]
    state_at, state_rows = _state_rows(db)
    for a, b in analytics.uncovered(start, stop, hours):
        events, chunks, _ = _chunks(db, a, b, state_rows if state_at == a else None)
        for chunk in chunks:
            with db.read() as conn:
                opening = _opening(conn, a, chunk, state_at)
                rows = analytics.read_rows(conn, a, b, chunk)
            part_cells, part_buckets = analytics.slice_parts(analytics.compute(Inputs(rows, opening, events, kinds), a, b))
            all_cells.append(analytics.opening_counted(part_cells, opens_period=a == start))
            all_buckets.append(part_buckets)
    return analytics.combine(all_cells, all_buckets)


def roll_up(db: Database, history_days: float, now: datetime | None = None, budget_s: float | None = None) -> RollupReport:
    """Roll up the complete hours of the retention window not rolled up yet, oldest first, a
    window at a time; stops starting windows once ``budget_s`` has passed (the next run goes
    on from there)."""
    started = time.perf_counter()
    now = to_db_time(now or utcnow())
    with db.read() as conn:
        todo = pending_hours(conn, now - timedelta(days=history_days), now)
        kinds = analytics.read_kinds(conn)
    done = dropped = 0
    carried: pl.DataFrame | None = None
    carried_at: datetime | None = None
    state_at, state_rows = _state_rows(db)
    plan = windows(todo)
    for n, (a, b) in enumerate(plan):
        if budget_s is not None and n and time.perf_counter() - started > budget_s:
            break
        in_memory = carried is not None and carried_at == a
        known = carried.height if in_memory and carried is not None else state_rows if state_at == a else None
        events, chunks, inside = _chunks(db, a, b, known)
        cell_parts, bucket_parts, state_parts = [], [], []
        for chunk in chunks:
            with db.read() as conn:
                if in_memory and carried is not None:
                    opening = carried.filter(pl.col("event_no").is_between(*chunk))
                else:
                    opening = _opening(conn, a, chunk, state_at)
                rows = analytics.read_rows(conn, a, b, chunk)
            cells, buckets = analytics.slice_parts(analytics.compute(Inputs(rows, opening, events, kinds), a, b, hourly=True),
                                                   by=["hour"])
            cell_parts.append(cells)
            bucket_parts.append(buckets)
            state_parts.append(analytics.carried(opening, rows, events.filter(pl.col("kickoff") > b)))
        state = pl.concat(state_parts) if state_parts else pl.DataFrame(
            schema={"event_no": pl.Int32, "kind_id": pl.Int32, "odds": pl.Float64, "available": pl.Boolean})
        last = n == len(plan) - 1 or (budget_s is not None and time.perf_counter() - started > budget_s)
        with db.write() as conn:
            if history_count(conn, a, b) != inside:
                log.warning("margin rollup of %s–%s dropped: history changed while it was computed", a, b)
                dropped += 1
                carried = None
                continue
            write_window(conn, a, b, pl.concat(cell_parts), pl.concat(bucket_parts), state if last else None, utcnow())
        done += int((b - a) / HOUR)
        carried, carried_at = state, b
        if last:
            state_at, state_rows = b, state.height
    return RollupReport(hours=done, left=len(todo) - done, dropped=dropped, seconds=time.perf_counter() - started)
