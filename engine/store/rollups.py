"""Margin rollups: the margin page sums a few stored slices instead of rebuilding a week from
history.

``analytics.compute`` cuts every market state at UTC hour boundaries, and the sums of
consecutive slices add up to the sums of their union, so each completed hour is computed once
and kept in ``margin_rollup`` (schema step 5). A period is then the stored slices that tile it
(one grouped read) plus what is left — the current partial hour, hours the scheduler has not
reached, a start or end inside an hour — computed live (``margin_analytics``). With no rollups
at all (a fresh database, tests) the live part is the whole period: the same numbers, slower.

Slices: hours, and days
=======================
An hour holds ~76k cells on the 1,500-event store of ``benchmarks/queries.py`` (book × market ×
tournament), ~20 bytes each on disk: kept for 14 days, hours alone would weigh almost as much
as the history (~500 MB) and a week would be 13M rows to sum (~2 s). So once every hour of a
local day of the desk (``DAY_TZ``: the page's periods are local days) is rolled up, the day is
summed into one slice of its own, and its hours are dropped once they are older than
``KEEP_HOURS``. A week in the desk's zone is then seven day slices, today's hours and a live
remainder. A viewer in another zone still gets the right numbers: where no stored slice starts
at a period's edge, that stretch is computed live (slower).

Building them
=============
``roll_up`` (the scheduler, under its cycle lock) rolls up the hours of the retention window
that are complete and not in any slice, from the first local day wholly inside the window (or
the day of the first history), in windows of ``WINDOW_HOURS``. A window is a few reads under
the shared lock (its rows, by event ranges of about ``ROWS_PER_CHUNK`` rows), arithmetic
outside any lock, and one short write of its slices. Each window starts from the state the one
before ended with (carried in memory), the first from ``margin_rollup_state`` — the latest row
of every price as of the last hour rolled up, written with it — and only failing both from an
``arg_max`` over the history before it. That state also opens the page's live remainder, so
neither re-reads all history.

Staying right when history changes under them
=============================================
* Imports (``Store.import_history``) can add rows to hours already rolled up, and a row changes
  every later hour of its event (the state carries on). The import's transaction therefore
  deletes every slice that ends after the import's earliest row, and the state if that row is
  older than it (``invalidate``); the next run rebuilds them, the page computes them live
  meanwhile.
* A batch written while a window is computed (a cycle outside the scheduler's lock, say
  ``oddsdesk scrape --once``): the window's write re-counts the window's history rows and drops
  the window if they changed; the next run computes it again.
* Retention: ``maintenance.delete_old`` deletes the slices that start before its cutoff.
* Stored slices keep the kickoff, country and tournament an event had when they were computed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

from engine.store import analytics
from engine.store.analytics import HOUR, Inputs
from engine.store.db import Database, affected, db_frame, from_db_time, register, rows, run, to_db_time, unregister, utcnow
from engine.store.schema import margin_rollup_slices, store_state

log = logging.getLogger("oddsdesk.store.rollups")

#: The desk's zone: its local days become day slices (BetPawa's Nigerian trading desk).
DAY_TZ = "Africa/Lagos"
#: Hours of a day slice are kept this long after they end (recent periods that do not start at
#: the desk's midnight), then dropped.
KEEP_HOURS = timedelta(hours=24)
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
    """Hours covered by slices, when a slice was last written (aware UTC), and where the latest
    one ends (aware UTC): the page's live remainder starts there."""

    hours: int
    rolled_at: datetime | None
    through: datetime | None


@dataclass(frozen=True)
class Slice:
    start: datetime
    hours: int

    @property
    def end(self) -> datetime:
        return self.start + self.hours * HOUR


# --- time (pure) --------------------------------------------------------------------------------


def floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def ceil_hour(value: datetime) -> datetime:
    floor = floor_hour(value)
    return floor if floor == value else floor + HOUR


def _midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, clock(), ZoneInfo(tz)).astimezone(UTC).replace(tzinfo=None)


def day_slices(start: datetime, stop: datetime, tz: str = DAY_TZ) -> list[Slice]:
    """The local days of ``tz`` that overlap [start, stop) (naive UTC), as slices — none when
    the zone's midnights do not fall on whole UTC hours (the hours then stay as they are)."""
    day = start.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).date()
    out = []
    while (begin := _midnight(day, tz)) < stop:
        end = _midnight(day + timedelta(days=1), tz)
        if begin != floor_hour(begin) or end != floor_hour(end):
            return []
        if end > start:
            out.append(Slice(begin, int((end - begin) / HOUR)))
        day += timedelta(days=1)
    return out


def day_start(value: datetime, tz: str = DAY_TZ, after: bool = False) -> datetime:
    """The desk's midnight at or before ``value`` (or the first at or after it), or the hour
    when the zone's midnights are not whole hours."""
    days = day_slices(value, value + HOUR, tz)
    if not days:
        return ceil_hour(value) if after else floor_hour(value)
    return days[0].start if not after or days[0].start == value else days[0].end


def windows(hours: Sequence[datetime], size: int) -> list[tuple[datetime, datetime]]:
    """Consecutive runs of ``hours`` cut into [start, end) windows of at most ``size`` hours."""
    out: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if out and out[-1][1] == hour and out[-1][1] - out[-1][0] < size * HOUR:
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def tile(start: datetime, stop: datetime, slices: Sequence[Slice]) -> tuple[list[Slice], list[tuple[datetime, datetime]]]:
    """[start, stop) as stored slices (the longest that fits at each point) and the gaps between
    them, to compute live."""
    fitting = sorted((s for s in slices if s.start >= start and s.end <= stop), key=lambda s: (s.start, -s.hours))
    chosen: list[Slice] = []
    gaps: list[tuple[datetime, datetime]] = []
    at = start
    for piece in fitting:
        if piece.start < at:
            continue
        if piece.start > at:
            gaps.append((at, piece.start))
        chosen.append(piece)
        at = piece.end
    if at < stop:
        gaps.append((at, stop))
    return chosen, gaps


# --- the tables (on a store connection) ---------------------------------------------------------

#: Slices that overlap [$start, $stop).
_OVERLAPPING = "slice_start < $stop AND slice_start + slice_hours * INTERVAL '1 hour' > $start"


def slices(conn: sa.Connection, start: datetime, stop: datetime) -> list[Slice]:
    """The stored slices that overlap [start, stop)."""
    found = db_frame(conn, f"SELECT slice_start, slice_hours FROM margin_rollup_slices WHERE {_OVERLAPPING}",
                     {"start": start, "stop": stop})
    return [Slice(s, h) for s, h in found.iter_rows()]


def rolled_sums(conn: sa.Connection, chosen: Sequence[Slice], start: datetime,
                markets: Sequence[str] | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``chosen`` slices summed: (cells, buckets); the states carried into a slice count only
    for the slice that opens the period (it starts at ``start``)."""
    params: dict[str, object] = {"start": start}
    for i, s in enumerate(chosen):  # a few dozen slices: inline VALUES (a read cannot create a table on PostgreSQL)
        params |= {f"s{i}": s.start, f"h{i}": s.hours}
    values = ", ".join(f"(CAST($s{i} AS TIMESTAMP), CAST($h{i} AS INTEGER))" for i in range(len(chosen)))
    market_filter = ""
    if markets is not None:
        params |= {f"m{i}": m for i, m in enumerate(markets)}
        market_filter = f"AND market IN ({', '.join(f'$m{i}' for i in range(len(markets)))})"
    source = (f"margin_rollup JOIN (VALUES {values}) AS _chosen (slice_start, slice_hours) "
              f"USING (slice_start, slice_hours) WHERE grain = '{{grain}}' {market_filter}")
    cells = db_frame(conn, f"""
        SELECT bookmaker, market, country, tournament, sum(margin_x_seconds) AS margin_x_seconds,
               sum(margin_seconds) AS margin_seconds, sum(seconds) AS seconds,
               (sum(margin_states) + coalesce(sum(opening_states) FILTER (WHERE slice_start = $start), 0))::BIGINT
                 AS margin_states,
               sum(changes)::BIGINT AS changes, sum(odds_changes)::BIGINT AS odds_changes,
               sum(price_seconds) AS price_seconds
        FROM {source.format(grain="cell")} GROUP BY bookmaker, market, country, tournament""", params)
    params.pop("start")
    buckets = db_frame(conn, f"""
        SELECT bookmaker, market, bucket, sum(margin_x_seconds) AS margin_x_seconds,
               sum(margin_seconds) AS margin_seconds
        FROM {source.format(grain="bucket")} GROUP BY bookmaker, market, bucket""", params)
    return cells, buckets


def pending_hours(conn: sa.Connection, since: datetime, before: datetime, tz: str = DAY_TZ) -> list[datetime]:
    """Whole hours in no slice yet that end by ``before``: from the first of the desk's days
    wholly after ``since`` (or the day of the first history, if later)."""
    first = db_frame(conn, "SELECT min(observed_at) AS first FROM odds_history_data")["first"][0]
    if first is None:
        return []
    start, stop = max(day_start(since, tz, after=True), day_start(first, tz)), floor_hour(before)
    if start >= stop:
        return []
    covered = {s.start + n * HOUR for s in slices(conn, start, stop) for n in range(s.hours)}
    return [h for n in range(int((stop - start) / HOUR)) if (h := start + n * HOUR) not in covered]


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
        WHERE event_no BETWEEN $first AND $last AND event_no IN ({analytics.SCOPE})""",
                    {"start": start, "first": events[0], "last": events[1]})


def _set_state_time(conn: sa.Connection, at: datetime | None) -> None:
    conn.execute(sa.delete(store_state).where(store_state.c.key == STATE_KEY))
    if at is not None:
        conn.execute(sa.insert(store_state).values(key=STATE_KEY, value=json.dumps(at.isoformat()), updated_at=utcnow()))


def _consolidate(conn: sa.Connection, day: Slice) -> None:
    """``day`` as one slice, the sum of its hours, once all of them are rolled up."""
    span = {"start": day.start, "stop": day.end}
    hours, days = rows(conn, f"""
        SELECT count(*) FILTER (WHERE slice_hours = 1), count(*) FILTER (WHERE slice_hours > 1)
        FROM margin_rollup_slices WHERE {_OVERLAPPING}""", span)[0]
    if hours != day.hours or days:
        return
    run(conn, """
        INSERT INTO margin_rollup
        SELECT $start, $hours, grain, bookmaker, market, country, tournament, bucket,
               sum(margin_x_seconds), sum(margin_seconds), sum(seconds), sum(margin_states),
               CASE WHEN grain = 'cell' THEN coalesce(sum(opening_states) FILTER (WHERE slice_start = $start), 0) END,
               sum(changes), sum(odds_changes), sum(price_seconds)
        FROM margin_rollup WHERE slice_hours = 1 AND slice_start >= $start AND slice_start < $stop
        GROUP BY grain, bookmaker, market, country, tournament, bucket
        ORDER BY grain, bookmaker, market, country, tournament, bucket""", {**span, "hours": day.hours})
    conn.execute(sa.insert(margin_rollup_slices).values(slice_start=day.start, slice_hours=day.hours,
                                                        rolled_at=utcnow()))


def _prune(conn: sa.Connection, before: datetime) -> None:
    """Drop the hours that ended before ``before`` and are inside a day slice."""
    run(conn, """
        CREATE TEMP TABLE _pruned AS
        SELECT h.slice_start FROM margin_rollup_slices h JOIN margin_rollup_slices d
          ON d.slice_hours > 1 AND h.slice_start >= d.slice_start
         AND h.slice_start < d.slice_start + d.slice_hours * INTERVAL '1 hour'
        WHERE h.slice_hours = 1 AND h.slice_start + INTERVAL '1 hour' <= $before""", {"before": before})
    run(conn, "DELETE FROM margin_rollup WHERE slice_hours = 1 AND slice_start IN (SELECT slice_start FROM _pruned)")
    run(conn, "DELETE FROM margin_rollup_slices WHERE slice_hours = 1 "
              "AND slice_start IN (SELECT slice_start FROM _pruned)")
    run(conn, "DROP TABLE _pruned")


def write_window(conn: sa.Connection, start: datetime, stop: datetime, cells: Sequence[pl.DataFrame],
                 buckets: Sequence[pl.DataFrame], state: pl.DataFrame | None, now: datetime,
                 tz: str = DAY_TZ) -> None:
    """The hours of [start, stop) as slices (replacing any that overlap), each desk day they
    complete as a day slice, hours that ended ``KEEP_HOURS`` before ``now`` inside day slices
    dropped — in the caller's write transaction; with ``state``, it becomes the stored state as
    of ``stop``."""
    span = {"start": start, "stop": stop}
    run(conn, f"DELETE FROM margin_rollup WHERE {_OVERLAPPING}", span)
    run(conn, f"DELETE FROM margin_rollup_slices WHERE {_OVERLAPPING}", span)
    parts = [*(c.with_columns(grain=pl.lit("cell")) for c in cells if c.height),
             *(b.with_columns(grain=pl.lit("bucket")) for b in buckets if b.height)]
    if parts:
        sums = (pl.concat(parts, how="diagonal_relaxed").rename({"hour": "slice_start"})
                .with_columns(slice_hours=pl.lit(1, pl.Int32))
                .sort("slice_start", "grain", "bookmaker", "market", "country", "tournament", "bucket"))
        register(conn, "_rollup", sums)
        columns = ", ".join(sums.columns)
        run(conn, f"INSERT INTO margin_rollup ({columns}) SELECT {columns} FROM _rollup")
        unregister(conn, "_rollup")
    hours = [start + n * HOUR for n in range(int((stop - start) / HOUR))]
    register(conn, "_slices", pl.DataFrame({"slice_start": hours, "slice_hours": [1] * len(hours)},
                                           schema={"slice_start": pl.Datetime("us"), "slice_hours": pl.Int32}))
    run(conn, "INSERT INTO margin_rollup_slices SELECT slice_start, slice_hours, $at FROM _slices", {"at": utcnow()})
    unregister(conn, "_slices")
    for day in day_slices(start, stop, tz):
        _consolidate(conn, day)
    _prune(conn, now - KEEP_HOURS)
    if state is not None:
        run(conn, "DELETE FROM margin_rollup_state")
        register(conn, "_state", state.select("event_no", "kind_id", "odds", "available"))
        run(conn, "INSERT INTO margin_rollup_state SELECT * FROM _state ORDER BY event_no, kind_id")
        unregister(conn, "_state")
        _set_state_time(conn, stop)


def invalidate(conn: sa.Connection, since: datetime) -> int:
    """History from ``since`` on changed (an import): the slices it can change (every one that
    ends after its hour starts) are dropped, and the state if it stood after ``since``. In the
    caller's transaction; returns the hours dropped."""
    since = to_db_time(since)
    span = {"start": floor_hour(since), "stop": datetime.max}
    dropped = rows(conn, f"SELECT coalesce(sum(slice_hours), 0) FROM margin_rollup_slices WHERE {_OVERLAPPING}",
                   span)[0][0]
    run(conn, f"DELETE FROM margin_rollup WHERE {_OVERLAPPING}", span)
    run(conn, f"DELETE FROM margin_rollup_slices WHERE {_OVERLAPPING}", span)
    at = state_time(conn)
    if at is not None and since < at:
        run(conn, "DELETE FROM margin_rollup_state")
        _set_state_time(conn, None)
    return int(dropped)


def delete_before(conn: sa.Connection, before: datetime) -> int:
    """Retention: the slices that start before ``before``, and the state of events whose history
    is gone (a new event may take over the number); returns the margin_rollup rows deleted."""
    deleted = affected(conn, "DELETE FROM margin_rollup WHERE slice_start < ?", [before])
    run(conn, "DELETE FROM margin_rollup_slices WHERE slice_start < ?", [before])
    run(conn, "DELETE FROM margin_rollup_state WHERE event_no NOT IN (SELECT event_no FROM history_events)")
    return int(deleted)


def status(conn: sa.Connection) -> RollupStatus:
    stored = db_frame(conn, "SELECT slice_start, slice_hours, rolled_at FROM margin_rollup_slices")
    if stored.is_empty():
        return RollupStatus(0, None, None)
    hours = {start + n * HOUR for start, span, _ in stored.iter_rows() for n in range(span)}
    return RollupStatus(len(hours), from_db_time(stored["rolled_at"].max()), from_db_time(max(hours) + HOUR))  # type: ignore[arg-type]


# --- computing (units of work on the store's Database) ------------------------------------------


def _chunks(db: Database, start: datetime, stop: datetime,
            carried_rows: int | None) -> tuple[pl.DataFrame, list[tuple[int, int]], int]:
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


def _state_rows(db: Database) -> tuple[datetime | None, int]:
    with db.read() as conn:
        at = state_time(conn)
        return at, int(db_frame(conn, "SELECT count(*) AS n FROM margin_rollup_state")["n"][0]) if at else 0


def margin_analytics(db: Database, start: datetime, end: datetime, markets: Sequence[str] | None,
                     now: datetime) -> dict[str, pl.DataFrame]:
    """[start, min(end, now)): the stored slices that tile it summed, the rest computed live."""
    start, stop = to_db_time(start), min(to_db_time(end), to_db_time(now))
    if start >= stop or (markets is not None and not markets):
        return analytics.empty_result()
    with db.read() as conn:
        chosen, gaps = tile(start, stop, slices(conn, start, stop))
        cells, buckets = rolled_sums(conn, chosen, start, markets) if chosen else (pl.DataFrame(), pl.DataFrame())
        kinds = analytics.read_kinds(conn, markets)
    all_cells, all_buckets = [cells], [buckets]
    state_at, state_rows = _state_rows(db) if gaps else (None, 0)
    for a, b in gaps:
        events, chunks, _ = _chunks(db, a, b, state_rows if state_at == a else None)
        for chunk in chunks:
            with db.read() as conn:
                opening = _opening(conn, a, chunk, state_at)
                rows = analytics.read_rows(conn, a, b, chunk)
            sums = analytics.compute(Inputs(rows, opening, events, kinds), a, b)
            all_cells.append(analytics.opening_counted(sums.cells, opens_period=a == start))
            all_buckets.append(sums.buckets)
    return analytics.combine(all_cells, all_buckets)


def _idle(db: Database, start: datetime) -> bool:
    """No event is still to kick off at ``start``: every hour from there is empty (an event
    scraped later has history only from then on)."""
    with db.read() as conn:
        return analytics.read_events(conn, start).is_empty()


def _opening(conn: sa.Connection, start: datetime, chunk: tuple[int, int], state_at: datetime | None) -> pl.DataFrame:
    return read_state(conn, start, chunk) if state_at == start else analytics.read_opening(conn, start, chunk)


def _window(db: Database, start: datetime, stop: datetime, kinds: pl.DataFrame, carried: pl.DataFrame | None,
            state_at: datetime | None, state_rows: int) -> tuple[list[pl.DataFrame], list[pl.DataFrame], pl.DataFrame, int]:
    """The hours of [start, stop), opened by ``carried`` (in memory), else the stored state, else
    history: (cells, buckets, the state at ``stop``, the history rows of the window)."""
    known = carried.height if carried is not None else state_rows if state_at == start else None
    events, chunks, inside = _chunks(db, start, stop, known)
    cells, buckets, states = [], [], []
    for chunk in chunks:
        with db.read() as conn:
            opening = (carried.filter(pl.col("event_no").is_between(*chunk)) if carried is not None
                       else _opening(conn, start, chunk, state_at))
            rows = analytics.read_rows(conn, start, stop, chunk)
        sums = analytics.compute(Inputs(rows, opening, events, kinds), start, stop, hourly=True, carry=True)
        cells.append(sums.cells)
        buckets.append(sums.buckets)
        states.append(sums.carried)
    state = pl.concat(states) if states else pl.DataFrame(schema=analytics.OPENING_SCHEMA)
    return cells, buckets, state, inside


def roll_up(db: Database, history_days: float, now: datetime | None = None, budget_s: float | None = None,
            tz: str = DAY_TZ) -> RollupReport:
    """Roll up the complete hours of the retention window that are in no slice yet, oldest
    first, a window at a time (a stretch with no event still to play is one window); stops
    starting windows once ``budget_s`` has passed (the next run goes on from there)."""
    started = time.perf_counter()
    now = to_db_time(now or utcnow())
    with db.read() as conn:
        todo = pending_hours(conn, now - timedelta(days=history_days), now, tz)
        kinds = analytics.read_kinds(conn)
    state_at, state_rows = _state_rows(db)
    runs = windows(todo, size=max(len(todo), 1))
    done = dropped = 0
    carried: pl.DataFrame | None = None
    carried_at: datetime | None = None

    def spent() -> bool:
        return budget_s is not None and time.perf_counter() - started > budget_s

    for run_start, run_end in runs:
        a = run_start
        while a < run_end:
            if (done or dropped) and spent():
                return RollupReport(done, len(todo) - done, dropped, time.perf_counter() - started)
            b = run_end if _idle(db, a) else min(a + WINDOW_HOURS * HOUR, run_end)
            cells, buckets, state, inside = _window(db, a, b, kinds, carried if carried_at == a else None,
                                                    state_at, state_rows)
            last = b == runs[-1][1] or spent()
            with db.write() as conn:
                if history_count(conn, a, b) != inside:
                    log.warning("margin rollup of %s–%s dropped: history changed while it was computed", a, b)
                    dropped += 1
                    carried, a = None, b
                    continue
                write_window(conn, a, b, cells, buckets, state if last else None, now, tz)
            done += int((b - a) / HOUR)
            carried, carried_at = state, b
            if last:
                state_at, state_rows = b, state.height
            a = b
    return RollupReport(done, len(todo) - done, dropped, time.perf_counter() - started)
