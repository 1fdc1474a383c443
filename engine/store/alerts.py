"""The SQL of the movement alerts: evaluated inside each batch's write transaction, listed and
acknowledged by the app. The rules themselves are ``engine.markets.alerts`` (pure).

Evaluation costs what the batch changed, not what the tables hold (``benchmarks/alerts.py``
measures it): the rules judge only the groups the batch's diff touched, on this batch's price
changes (with the prices before them, from the rows ``diff_prices`` was computed against) and
the window's earlier ones; alerts are written only when some are raised or cleared;
odds_history and odds_current are not read again. The rules run on a worker thread
(``start_evaluation``) while the batch's own SQL runs (DuckDB, psycopg and polars let go of the
GIL), and their alerts are written in the same transaction (``finish_evaluation``).

The writing process keeps what it last wrote in memory (``_Kept``): the window's moves, a chunk
per batch (dropped once out of the window), and a ledger of the open (and recent steam) alerts
by dedup key; it goes back into memory as the batch's transaction commits, so a rolled-back
batch leaves nothing behind. A process that reads the state from the tables (its first batch,
or another process evaluated batches since) writes a random token to ``store_state`` with it;
while the stored token is still its own, no other process has written alerts, and what it
keeps is what the tables hold. The token is written only then, not every batch: one more
table in each commit's checkpoint cost more than the check. The read-back takes the alerts
from their table and the window's moves from odds_history (``_WINDOW``), which has every change
of every price; the moves are not stored a second time (a table of their own, appended every
batch, cost each commit more than the rest of the evaluation).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from engine.markets import alerts as rules
from engine.store import schema
from engine.store.db import db_frame, duck, frame, is_postgres, register, rows, run, to_db_time, unregister, utcnow
from engine.store.schema import NO_LINE
from engine.store.types import BatchWrite

#: How far before the window ``_WINDOW`` looks for the price a window's first move came from.
#: A price quiet for longer (rare: most prices that move now moved in the last hours) counts as
#: first quoted at that move, as a new price would; this bounds a read-back to ~7 hours of
#: history instead of a fortnight's.
LOOKBACK = timedelta(hours=6)

#: The window's moves as odds_history holds them: each history row of the window paired with the
#: row before it of the same price (``lag`` over the window's rows and, per price, the last one
#: before the window within ``LOOKBACK``); a price's first row is no move (it was first quoted).
_WINDOW = f"""
WITH moved AS (SELECT DISTINCT event_no, kind_id FROM odds_history_data WHERE observed_at > $start),
recent AS (
    SELECT h.event_no, h.kind_id, h.odds, h.available, h.observed_at,
           row_number() OVER (PARTITION BY h.event_no, h.kind_id, h.observed_at > $start
                              ORDER BY h.observed_at DESC) AS back
    FROM odds_history_data h JOIN moved m ON m.event_no = h.event_no AND m.kind_id = h.kind_id
    WHERE h.observed_at > $since),
paired AS (
    SELECT event_no, kind_id, observed_at, odds, available,
           lag(odds) OVER w AS from_odds, lag(available) OVER w AS from_available
    FROM recent WHERE observed_at > $start OR back = 1
    WINDOW w AS (PARTITION BY event_no, kind_id ORDER BY observed_at))
SELECT e.sr_id, k.bookmaker, k.market, coalesce(k.line, {NO_LINE}) AS line_key, k.line, k.outcome,
       p.observed_at AS moved_at, p.from_odds, p.from_available, p.odds AS to_odds, p.available AS to_available
FROM paired p JOIN history_events e ON e.event_no = p.event_no JOIN price_kinds k ON k.kind_id = p.kind_id
WHERE p.observed_at > $start AND p.from_odds IS NOT NULL
ORDER BY p.observed_at
"""

#: The alerts ``rules.settle`` compares with: the open ones, and the steam alerts of the window.
_KEPT_ALERTS = f"""
SELECT id, kind, dedup_key, sr_id, market, coalesce(line, {NO_LINE}) AS line_key, size, created_at, cleared_at
FROM alerts WHERE cleared_at IS NULL OR (kind = 'steam' AND created_at > $start)
"""

#: Rows are appended on DuckDB as Arrow relations (``insert_into``, by position, in the table's
#: column order): registering them as views in the transaction's catalog costs ~0.6 ms a table.
_ALERT_TYPES = {"id": pa.int64(), "run_id": pa.int64(), "line": pa.float64(), "size": pa.float64(),
                "created_at": pa.timestamp("us"), "cleared_at": pa.timestamp("us"),
                "acknowledged_at": pa.timestamp("us")}
_ALERT_SCHEMA = pa.schema([(c.name, _ALERT_TYPES.get(c.name, pa.string())) for c in schema.alerts.columns])

_TOKEN_KEY = "alerts_token"
_PULLS = (rules.COMPETITORS_PULLED, rules.BETPAWA_PULLED)


@dataclass(frozen=True)
class _Chunk:
    """Moves (MOVE_SCHEMA with ``with_keys``' keys, oldest first) of ``events``, up to ``last``."""

    last: datetime
    events: frozenset[str]
    moves: pl.DataFrame


@dataclass
class _Kept:
    """What this process last wrote to one database, as of the token it took the tables over with."""

    token: str
    chunks: tuple[_Chunk, ...]  # the window's moves: one chunk a batch (or one read back), oldest first
    ledger: rules.Ledger  # the open alerts and the window's steam alerts, by dedup key
    open: set[str] = field(default_factory=set)  # the keys with an open alert
    open_steam: set[str] = field(default_factory=set)  # the steam ones among them
    open_pulls: dict[str, int] = field(default_factory=dict)  # pull keys with an open alert → their ``_gk``
    deferred: frozenset[str] = frozenset()  # events changed while a fetch failed: judged whole next time


#: Database (file or URL) → what this process last wrote there (see the module docstring).
_KEPT: dict[str, _Kept] = {}
_KEPT_FILES = 4


def _token_holds(conn: sa.Connection, kept: _Kept) -> bool:
    """Whether the stored token is ``kept``'s: no other process took the tables over since."""
    return bool(rows(conn, "SELECT 1 FROM store_state WHERE key = ? AND value = ?", [_TOKEN_KEY, kept.token]))


def _take_over(conn: sa.Connection, token: str) -> None:
    """Write ``token`` in this transaction: any other process's kept state is stale from now on."""
    if not rows(conn, "UPDATE store_state SET value = ? WHERE key = ? RETURNING key", [token, _TOKEN_KEY]):
        run(conn, "INSERT INTO store_state (key, value, updated_at) VALUES (?, ?, ?)", [_TOKEN_KEY, token, utcnow()])


def _read_back(conn: sa.Connection, start: datetime) -> _Kept:
    """The kept state as the tables hold it, under a new token (``_take_over``)."""
    token = uuid.uuid4().hex
    _take_over(conn, token)
    moves = rules.with_keys(db_frame(conn, _WINDOW, {"start": start, "since": start - LOOKBACK}).cast(
        rules.MOVE_SCHEMA))
    chunk = _Chunk(moves["moved_at"].max(), frozenset(moves["sr_id"].unique().to_list()), moves)  # type: ignore[arg-type]
    kept = _Kept(token, (chunk,) if moves.height else (), rules.ledger(db_frame(conn, _KEPT_ALERTS, {"start": start})))
    _settle(kept, [], [], start, start, prune=False, keys=set(kept.ledger))
    return kept


def _store_key(conn: sa.Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _put_on_commit(conn: sa.Connection, kept: _Kept) -> None:
    """``kept`` back in ``_KEPT`` as the transaction commits: a rolled-back batch leaves nothing
    kept, and the next one reads the tables back. (The event comes just before the database's
    own commit; a commit that then fails — a lost connection, a disk error — goes unseen.)"""
    path = _store_key(conn)

    def put(_conn: sa.Connection) -> None:
        while len(_KEPT) >= _KEPT_FILES:
            _KEPT.pop(next(iter(_KEPT)))
        _KEPT[path] = kept
    sa.event.listen(conn, "commit", put)


def _window(chunks: Sequence[_Chunk], now: pl.DataFrame, start: datetime, events: frozenset[str]) -> pl.LazyFrame:
    """The window's moves of ``events``, the ones ``now`` moved (those of other events do not
    matter to the rules, so a batch's chunk is taken whole)."""
    parts = []
    for c in chunks:
        if c.last > start and not c.events.isdisjoint(events):
            parts.append(c.moves if len(c.events) <= 2 * len(events) else
                         c.moves.filter(pl.col("sr_id").is_in(list(events))))  # one read back from the table
    return pl.concat([*parts, now], how="vertical_relaxed").lazy().filter(pl.col("moved_at") > start)


def _whole_pairs(batch: BatchWrite) -> pl.DataFrame | None:
    """(event, book) pairs fetched whole, of events no book failed on in this batch; None (all of
    them) when no fetch failed."""
    failed = {s.sr_id for s in batch.statuses if s.books_failed}
    if not failed:
        return None
    return pl.DataFrame([p for p in batch.scraped if p[0] not in failed],
                        schema={"sr_id": pl.String, "bookmaker": pl.String}, orient="row")


def _match_names(batch: BatchWrite, conn: sa.Connection, sr_ids: set[str]) -> dict[str, str]:
    """"Home – Away" of these events: from the batch, else (a batch without event rows) the table."""
    names = {e.sr_id: f"{e.home} – {e.away}" for e in batch.events if e.sr_id in sr_ids}
    missing = [s for s in sr_ids if s not in names]
    if missing:
        stored = db_frame(conn, "SELECT sr_id, home, away FROM events WHERE sr_id = ANY($ids)", {"ids": missing})
        names |= {s: f"{h} – {a}" for s, h, a in stored.iter_rows()}
    return names


def _insert(conn: sa.Connection, table: str, data: pa.Table) -> None:
    """Append ``data`` (in the table's column order): DuckDB straight from Arrow, PostgreSQL
    through a ``COPY``-filled temporary table (``db.register``)."""
    if not is_postgres(conn):
        duck(conn).from_arrow(data).insert_into(table)
        return
    register(conn, "_rows", data)
    columns = ", ".join(data.column_names)
    run(conn, f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _rows")
    unregister(conn, "_rows")


def _write(conn: sa.Connection, batch: BatchWrite, at: datetime, new: list[rules.Obs],
           clear: list[rules.Stored]) -> list[rules.Stored]:
    """Clear and insert in the database; the inserted alerts."""
    if clear:
        run(conn, f"UPDATE alerts SET cleared_at = ? WHERE id IN ({', '.join(str(int(a.id)) for a in clear)})", [at])
    if not new:
        return []
    names = _match_names(batch, conn, {o["sr_id"] for o in new})
    ids = [i for (i,) in rows(conn, "SELECT nextval('alerts_id_seq') FROM generate_series(1, ?)", [len(new)])]
    values = {"id": ids, "created_at": [at] * len(new), "run_id": [batch.run_id] * len(new),
              "message": [rules.message(o, names.get(o["sr_id"], o["sr_id"])) for o in new]}
    _insert(conn, "alerts", pa.table({c: values.get(c) or [o.get(c) for o in new] for c in _ALERT_SCHEMA.names},
                                     schema=_ALERT_SCHEMA))
    return [rules.Stored(i, o["kind"], o["dedup_key"], o["sr_id"], o["market"],
                         NO_LINE if o["line"] is None else o["line"], o["size"], at) for i, o in zip(ids, new)]


def _settle(kept: _Kept, cleared: list[rules.Stored], new: list[rules.Stored], at: datetime, start: datetime,
            prune: bool, keys: set[str] | None = None) -> None:
    """Bring the kept ledger up to what was just written. ``prune``: look at every key, and drop
    what no batch compares with again (cleared alerts but the window's steam ones); else only at
    the keys written (and ``keys``)."""
    gone = {a.id for a in cleared}
    touched = {a.dedup_key for a in cleared} | {a.dedup_key for a in new} | (keys or set())
    for a in new:
        kept.ledger.setdefault(a.dedup_key, []).append(a)
    keep = (lambda a: a.cleared_at is None or (a.kind == rules.STEAM and a.created_at > start))
    groups: dict[str, tuple[str, str, float]] = {}
    for key in list(kept.ledger) if prune else touched:
        alerts = [dataclasses.replace(a, cleared_at=at) if a.id in gone else a for a in kept.ledger.get(key, ())]
        alerts = [a for a in alerts if keep(a)]
        if alerts:
            kept.ledger[key] = alerts
        else:
            kept.ledger.pop(key, None)
        open_ = [a for a in alerts if a.cleared_at is None]
        (kept.open.add if open_ else kept.open.discard)(key)
        (kept.open_steam.add if any(a.kind == rules.STEAM for a in open_) else kept.open_steam.discard)(key)
        pulls = [a for a in open_ if a.kind in _PULLS]
        if not pulls:
            kept.open_pulls.pop(key, None)
        elif key not in kept.open_pulls:
            groups[key] = (pulls[0].sr_id, pulls[0].market, pulls[0].line_key)
    if groups:
        kept.open_pulls.update(zip(groups, rules.group_keys(list(groups.values())), strict=True))


_T = TypeVar("_T")


class _Worker(Generic[_T]):
    """``fn()`` on a thread of its own; ``result()`` waits for it and returns or raises what it did.
    A thread per batch rather than a pool: a pool's thread would not survive a fork."""

    def __init__(self, fn: Callable[[], _T]) -> None:
        self._fn = fn
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="alert-rules", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc

    def result(self) -> _T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True)
class _Judged:
    """What the rules made of one batch (``_judge``)."""

    view: rules.BatchView
    moved: frozenset[str]  # the events it moved a price of
    new: list[rules.Obs]  # alerts to raise
    clear: list[rules.Stored]  # stored alerts to clear


def _judge(kept: _Kept, diff: pl.DataFrame, before: pl.DataFrame, at: datetime, start: datetime,
           judge: frozenset[str], whole: pl.DataFrame | None, t: rules.AlertThresholds) -> _Judged:
    """The rules on one batch: no I/O, and ``kept`` only read (the worker thread's part)."""
    view = rules.batch_view(diff, before, at, judge)
    now = view.moves
    moved = frozenset(now.get_column("sr_id").unique().to_list())
    window = _window(kept.chunks, now, start, moved) if now.height else now
    obs = rules.observe(view, diff, whole, window, t, kept.open, set(kept.open_pulls.values()), judge,
                        bool(kept.open_steam))
    new, clear = rules.settle(obs, kept.ledger, t, at) if obs else ([], [])
    return _Judged(view, moved, new, clear)


@dataclass(frozen=True)
class Evaluation:
    """One batch's alert evaluation under way (``start_evaluation``)."""

    batch: BatchWrite
    kept: _Kept
    at: datetime
    start: datetime
    failed: frozenset[str]
    spoken: frozenset[str]
    rules: _Worker[_Judged]


def start_evaluation(conn: sa.Connection, batch: BatchWrite, diff: pl.DataFrame,
                     before: pl.DataFrame) -> Evaluation | None:
    """Start judging what ``batch`` changes, as soon as its ``diff_prices`` frame is known
    (``before``: the current rows that was computed against): the token and, if need be, the
    read-back on ``conn`` now, the rules on a worker thread. None when the batch carries no
    ``alert_thresholds`` (nothing is evaluated). ``finish_evaluation`` writes the alerts.

    Only the groups the batch touched are judged (``rules.batch_view``); the state of every
    other group is what the last batch left. An event a fetch failed on is not judged (the
    state rules need every book's set); if it changed meanwhile, its next whole batch judges all
    of its groups (``_Kept.deferred``).
    """
    t = batch.alert_thresholds
    if t is None or diff.is_empty():
        return None
    at = to_db_time(batch.observed_at)
    start = t.window_start(at)
    kept = _KEPT.pop(_store_key(conn), None)  # back in _KEPT only once the batch commits
    failed = frozenset(s.sr_id for s in batch.statuses if s.books_failed)
    spoken = frozenset({s.sr_id for s in batch.statuses} | {p[0] for p in batch.scraped})
    judge = (kept.deferred & spoken) - failed if kept else frozenset()
    if kept is None or not _token_holds(conn, kept):
        kept, judge = _read_back(conn, start), frozenset()
    whole = _whole_pairs(batch)
    worker = _Worker(lambda: _judge(kept, diff, before, at, start, judge, whole, t))
    return Evaluation(batch, kept, at, start, failed, spoken, worker)


def finish_evaluation(conn: sa.Connection, evaluation: Evaluation | None) -> int:
    """Wait for the rules, write what they raised and cleared on ``conn`` (the batch's
    transaction, after its prices are stored) and keep the state; returns how many were raised."""
    if evaluation is None:
        return 0
    e, judged = evaluation, evaluation.rules.result()
    kept, batch, at, start = e.kept, e.batch, e.at, e.start
    stored = _write(conn, batch, at, judged.new, judged.clear) if judged.new or judged.clear else []
    _settle(kept, judged.clear, stored, at, start, prune=batch.batch_no <= 1)
    now = judged.view.moves
    kept.chunks = tuple(c for c in kept.chunks if c.last > start) + (
        (_Chunk(at, judged.moved, now),) if now.height else ())
    touched = set(judged.view.touched["sr_id"].unique().to_list()) if e.failed else set()
    kept.deferred = frozenset((kept.deferred - e.spoken) | (e.failed & touched))
    _put_on_commit(conn, kept)
    return len(judged.new)


# --- the app's reads and writes ---------------------------------------------------------------

_LIST = """
SELECT a.id, a.created_at, a.kind, a.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away,
       a.bookmaker, a.market, a.line, a.outcome, a.size, a.message, a.data, a.run_id, a.cleared_at,
       a.acknowledged_at
FROM alerts a LEFT JOIN events e ON e.sr_id = a.sr_id
"""


def list_alerts(conn: sa.Connection, since: datetime | None = None, kinds: Sequence[str] = (),
                books: Sequence[str] = (), tournaments: Sequence[tuple[str, str]] = (),
                unacknowledged_only: bool = False, limit: int | None = None) -> pl.DataFrame:
    """Alerts, newest first, with their event; empty filters mean "all".

    ``books`` matches an alert about any of them (a pull alert can name two); ``tournaments``
    are (country, tournament) pairs, so equal names in two countries stay apart.
    """
    unknown = set(kinds) - set(rules.KINDS)
    if unknown:
        raise ValueError(f"unknown alert kind(s): {', '.join(sorted(unknown))}")
    where, params = [], {}
    if since is not None:
        where.append("a.created_at >= $since")
        params["since"] = since
    if kinds:
        where.append("a.kind = ANY($kinds)")
        params["kinds"] = list(kinds)
    if books:
        where.append("string_to_array(a.bookmaker, ',') && CAST($books AS TEXT[])")
        params["books"] = list(books)
    if tournaments:
        where.append("EXISTS (SELECT 1 FROM (SELECT unnest(CAST($countries AS TEXT[])) AS country, "
                     "unnest(CAST($tournaments AS TEXT[])) AS tournament) t "
                     "WHERE t.country = e.country AND t.tournament = e.tournament)")
        params["countries"] = [c for c, _ in tournaments]
        params["tournaments"] = [t for _, t in tournaments]
    if unacknowledged_only:
        where.append("a.acknowledged_at IS NULL")
    sql = _LIST + (f"WHERE {' AND '.join(where)}\n" if where else "") + "ORDER BY a.created_at DESC, a.id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return frame(conn, sql, params or None)


def count_unacknowledged(conn: sa.Connection) -> int:
    return int(frame(conn, "SELECT count(*) AS n FROM alerts WHERE acknowledged_at IS NULL").item())


def acknowledge(conn: sa.Connection, ids: Sequence[int]) -> int:
    """Mark these alerts acknowledged (now); returns how many were not acknowledged before."""
    bad = [i for i in ids if isinstance(i, bool) or not isinstance(i, int)]
    if bad:
        raise ValueError(f"alert ids must be integers, got {bad[:5]!r}")
    if not ids:
        return 0
    done = rows(conn, "UPDATE alerts SET acknowledged_at = $at WHERE acknowledged_at IS NULL AND id = ANY($ids) "
                      "RETURNING id", {"at": utcnow(), "ids": list(ids)})
    return len(done)
