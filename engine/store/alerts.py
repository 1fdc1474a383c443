"""The SQL of the movement alerts: evaluated inside each batch's write transaction, listed and
acknowledged by the app. The rules themselves are ``engine.markets.alerts`` (pure).

Evaluation costs what the batch changed, not what the tables hold. This batch's price changes
(with the prices before them, from the rows ``diff_prices`` was computed against) are appended
to ``alert_moves``, which keeps only the last window; the batch's own prices come from the diff;
odds_history and odds_current are not read again.

The writing process keeps what it last wrote — the window's moves and the open (and recent
steam) alerts — in memory (``_Kept``), next to a random token it also writes to ``store_state``
in the same transaction. A batch whose token matches uses the kept frames; any other (a first
batch, another process wrote since, a rolled-back transaction) reads them back once. Without
this, finding the window's moves of 50 events in ~200k rows (no index: a full scan) and the open
alerts in a growing table would cost more than the rest of the evaluation together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import sqlalchemy as sa

from engine.markets import alerts as rules
from engine.store.db import db_frame, duck, frame, register, to_db_time, utcnow
from engine.store.schema import NO_LINE
from engine.store.types import BatchWrite

_MOVE_COLUMNS = ", ".join(rules.MOVE_SCHEMA)
_MOVES = f"INSERT INTO alert_moves ({_MOVE_COLUMNS}) SELECT {_MOVE_COLUMNS} FROM _a_moves"
_WINDOW = f"SELECT {_MOVE_COLUMNS} FROM alert_moves WHERE moved_at > $start"

#: The alerts ``reconcile`` compares with: the open ones, and the steam alerts of the window.
_KEPT_ALERTS = f"""
SELECT id, kind, dedup_key, sr_id, market, coalesce(line, {NO_LINE}) AS line_key, size, created_at, cleared_at
FROM alerts WHERE cleared_at IS NULL OR (kind = 'steam' AND created_at > $start)
"""

_INSERT = """
INSERT INTO alerts (id, created_at, run_id, kind, sr_id, bookmaker, market, line, outcome, size, message, data,
                    dedup_key)
SELECT id, $at, $run, kind, sr_id, bookmaker, market, line, outcome, size, message, data, dedup_key FROM _a_new
"""

_TOKEN_KEY = "alerts_token"


@dataclass(frozen=True)
class _Kept:
    token: str
    moves: dict[str, pl.DataFrame]  # sr_id → its moves (MOVE_SCHEMA) in the window as of the last batch
    alerts: pl.DataFrame  # rules.EXISTING_SCHEMA


#: Database file → what this process last wrote there (see the module docstring).
_KEPT: dict[str, _Kept] = {}
_KEPT_FILES = 4


def _by_event(moves: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {key[0]: part for key, part in rules.with_keys(moves).partition_by("sr_id", as_dict=True).items()}


def _kept(conn: sa.Connection, start: datetime) -> _Kept:
    db = duck(conn)
    row = db.execute("SELECT value FROM store_state WHERE key = ?", [_TOKEN_KEY]).fetchone()
    kept = _KEPT.get(str(conn.engine.url.database))
    if kept is not None and row is not None and row[0] == kept.token:
        return kept
    return _Kept("", _by_event(db_frame(conn, _WINDOW, {"start": start}).cast(rules.MOVE_SCHEMA)),
                 db_frame(conn, _KEPT_ALERTS, {"start": start}).cast(rules.EXISTING_SCHEMA))


def _keep(conn: sa.Connection, moves: dict[str, pl.DataFrame], alerts: pl.DataFrame) -> None:
    """Record a new token in this transaction and keep the frames under it."""
    token = uuid.uuid4().hex
    db = duck(conn)
    if not db.execute("UPDATE store_state SET value = ? WHERE key = ? RETURNING key", [token, _TOKEN_KEY]).fetchall():
        db.execute("INSERT INTO store_state (key, value, updated_at) VALUES (?, ?, ?)", [_TOKEN_KEY, token, utcnow()])
    path = str(conn.engine.url.database)
    _KEPT.pop(path, None)
    while len(_KEPT) >= _KEPT_FILES:
        _KEPT.pop(next(iter(_KEPT)))
    _KEPT[path] = _Kept(token, moves, alerts)


def _whole_pairs(batch: BatchWrite) -> pl.DataFrame | None:
    """(event, book) pairs fetched whole, of events no book failed on in this batch; None (all of
    them) when no fetch failed."""
    failed = {s.sr_id for s in batch.statuses if s.books_failed}
    if not failed:
        return None
    return pl.DataFrame([p for p in batch.scraped if p[0] not in failed],
                        schema={"sr_id": pl.String, "bookmaker": pl.String}, orient="row")


def _match_names(batch: BatchWrite, conn: sa.Connection, sr_ids: list[str]) -> pl.DataFrame:
    """Home and away of these events: from the batch, else (a batch without event rows) the table."""
    known = {e.sr_id: (e.home, e.away) for e in batch.events}
    missing = [s for s in sr_ids if s not in known]
    rows = pl.DataFrame([(s, *known[s]) for s in sr_ids if s in known],
                        schema={"sr_id": pl.String, "home": pl.String, "away": pl.String}, orient="row")
    if missing:
        stored = db_frame(conn, "SELECT sr_id, home, away FROM events WHERE list_contains($ids, sr_id)",
                          {"ids": missing})
        rows = pl.concat([rows, stored.cast(rows.schema)])
    return rows


def _moves(conn: sa.Connection, batch: BatchWrite, kept: _Kept, now: pl.DataFrame, events: set[str],
           start: datetime) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Append this batch's moves to ``alert_moves`` (dropping what left the window, once a run);
    (the window's moves of the batch's events, every event's window to keep)."""
    window = pl.concat([kept.moves[e] for e in events if e in kept.moves] + [now], how="vertical_relaxed").filter(
        pl.col("moved_at") > start)
    moves = {e: m for e, m in kept.moves.items() if e not in events} | _by_event(window)
    db = duck(conn)
    if batch.batch_no <= 1:
        db.execute("DELETE FROM alert_moves WHERE moved_at <= ?", [start])
        moves = {e: m for e, m in moves.items() if m["moved_at"].max() > start}
    if now.height:
        register(conn, "_a_moves", now)
        db.execute(_MOVES)
        db.unregister("_a_moves")
    return window, moves


def _write(conn: sa.Connection, batch: BatchWrite, at: datetime, alerts: pl.DataFrame, new: pl.DataFrame,
           clear: list[int]) -> pl.DataFrame:
    """Clear and insert in the database; ``alerts`` (the kept ones) as they now stand."""
    db = duck(conn)
    if clear:
        db.execute("UPDATE alerts SET cleared_at = ? WHERE id >= ? AND list_contains(?, id)", [at, min(clear), clear])
        cleared = pl.col("id").is_in(pl.Series(clear, dtype=pl.Int64).implode())
        alerts = alerts.with_columns(
            cleared_at=pl.when(cleared).then(pl.lit(at, pl.Datetime("us"))).otherwise("cleared_at"))
    if new.height:
        ids = [i for (i,) in db.execute("SELECT nextval('alerts_id_seq') FROM range(?)", [new.height]).fetchall()]
        new = rules.describe(new, _match_names(batch, conn, new["sr_id"].unique().to_list())).with_columns(
            id=pl.Series(ids, dtype=pl.Int64), created_at=pl.lit(at, pl.Datetime("us")),
            line_key=pl.col("line").fill_null(NO_LINE), cleared_at=pl.lit(None, pl.Datetime("us")))
        register(conn, "_a_new", new)
        db.execute(_INSERT, {"at": at, "run": batch.run_id})
        db.unregister("_a_new")
        alerts = pl.concat([alerts, new.select(list(rules.EXISTING_SCHEMA)).cast(rules.EXISTING_SCHEMA)])
    return alerts


def evaluate_batch(conn: sa.Connection, batch: BatchWrite, diff: pl.DataFrame, before: pl.DataFrame) -> int:
    """Raise and clear alerts for what ``batch`` just changed; returns how many were raised.

    Runs on the batch's open write transaction, after its prices are stored: ``diff`` is its
    ``diff_prices`` frame, ``before`` the current rows that was computed against. Does nothing
    when the batch carries no ``alert_thresholds``.
    """
    t = batch.alert_thresholds
    if t is None or diff.is_empty():
        return 0
    at = to_db_time(batch.observed_at)
    start = t.window_start(at)
    kept = _kept(conn, start)
    now = rules.batch_moves(diff, before, at)
    window, moves = _moves(conn, batch, kept, now, set(diff["sr_id"].unique().to_list()), start)
    alerts = kept.alerts.filter(pl.col("cleared_at").is_null() | (pl.col("created_at") > start))
    obs = rules.observe(diff, _whole_pairs(batch), now, window, t, alerts.filter(pl.col("cleared_at").is_null()))
    new, clear = rules.reconcile(obs, alerts, t, at)
    alerts = _write(conn, batch, at, alerts, new, clear)
    _keep(conn, moves, alerts.filter(pl.col("cleared_at").is_null() | (pl.col("kind") == rules.STEAM)))
    return new.height


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
        where.append("list_contains($kinds, a.kind)")
        params["kinds"] = list(kinds)
    if books:
        where.append("list_has_any(string_split(a.bookmaker, ','), $books)")
        params["books"] = list(books)
    if tournaments:
        where.append("list_contains($tournaments, [e.country, e.tournament])")
        params["tournaments"] = [[c, t] for c, t in tournaments]
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
    done = duck(conn).execute(
        "UPDATE alerts SET acknowledged_at = $at WHERE acknowledged_at IS NULL AND list_contains($ids, id) "
        "RETURNING id",
        {"at": utcnow(), "ids": list(ids)}).fetchall()
    return len(done)
