"""The SQL of the movement alerts: evaluated inside each batch's write transaction, listed and
acknowledged by the app. The rules themselves are ``engine.markets.alerts`` (pure).

Evaluation costs what the batch changed, not what the tables hold (``benchmarks/alerts.py``
measures it): the rules judge only the groups the batch's diff touched; this batch's price
changes (with the prices before them, from the rows ``diff_prices`` was computed against) are
appended to ``alert_moves``, which keeps only the last window; alerts are written only when some
are raised or cleared; odds_history and odds_current are not read again.

The writing process keeps what it last wrote in memory (``_Kept``): the window's moves, a chunk
per batch (appended, dropped once out of the window), and a ledger of the open (and recent
steam) alerts by dedup key. Each batch swaps a random token in ``store_state`` in its own
transaction: when the stored token is the kept one, the kept state is what the tables hold; any
other (a first batch, another process wrote since, a rolled-back transaction) reads it back
once. Without this, finding the window's moves of 50 events in ~200k rows (no index: a full
scan) and the open alerts in a growing table would cost more than the rest of the evaluation.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from engine.markets import alerts as rules
from engine.store import schema
from engine.store.db import db_frame, duck, frame, is_postgres, register, rows, run, to_db_time, unregister, utcnow
from engine.store.schema import NO_LINE
from engine.store.types import BatchWrite

_MOVE_COLUMNS = ", ".join(rules.MOVE_SCHEMA)
_WINDOW = f"SELECT {_MOVE_COLUMNS} FROM alert_moves WHERE moved_at > $start"

#: The alerts ``rules.settle`` compares with: the open ones, and the steam alerts of the window.
_KEPT_ALERTS = f"""
SELECT id, kind, dedup_key, sr_id, market, coalesce(line, {NO_LINE}) AS line_key, size, created_at, cleared_at
FROM alerts WHERE cleared_at IS NULL OR (kind = 'steam' AND created_at > $start)
"""

#: Rows are appended on DuckDB as Arrow relations (``insert_into``, by position, in the tables'
#: column order): registering them as views in the transaction's catalog costs ~0.6 ms a table.
_ALERT_TYPES = {"id": pa.int64(), "run_id": pa.int64(), "line": pa.float64(), "size": pa.float64(),
                "created_at": pa.timestamp("us"), "cleared_at": pa.timestamp("us"),
                "acknowledged_at": pa.timestamp("us")}
_ALERT_SCHEMA = pa.schema([(c.name, _ALERT_TYPES.get(c.name, pa.string())) for c in schema.alerts.columns])
_MOVES_ORDER = [c.name for c in schema.alert_moves.columns]

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
    """What this process last wrote to one database file, as of the token it wrote with it."""

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


def _swap_token(conn: sa.Connection, kept: _Kept | None, token: str) -> bool:
    """Write ``token`` in this transaction; whether the stored one was ``kept``'s (then ``kept``
    is what the tables hold)."""
    if kept is not None and rows(conn, "UPDATE store_state SET value = ? WHERE key = ? AND value = ? RETURNING key",
                                 [token, _TOKEN_KEY, kept.token]):
        return True
    if not rows(conn, "UPDATE store_state SET value = ? WHERE key = ? RETURNING key", [token, _TOKEN_KEY]):
        run(conn, "INSERT INTO store_state (key, value, updated_at) VALUES (?, ?, ?)", [_TOKEN_KEY, token, utcnow()])
    return False


def _read_back(conn: sa.Connection, token: str, start: datetime) -> _Kept:
    """The kept state as the tables hold it."""
    moves = rules.with_keys(db_frame(conn, _WINDOW, {"start": start}).cast(rules.MOVE_SCHEMA).sort(
        "moved_at", maintain_order=True))
    chunk = _Chunk(moves["moved_at"].max(), frozenset(moves["sr_id"].unique().to_list()), moves)  # type: ignore[arg-type]
    kept = _Kept(token, (chunk,) if moves.height else (), rules.ledger(db_frame(conn, _KEPT_ALERTS, {"start": start})))
    _settle(kept, [], [], start, start, prune=False, keys=set(kept.ledger))
    return kept


def _store_key(conn: sa.Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _put(conn: sa.Connection, kept: _Kept) -> None:
    path = _store_key(conn)
    while len(_KEPT) >= _KEPT_FILES:
        _KEPT.pop(next(iter(_KEPT)))
    _KEPT[path] = kept


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


def _append_moves(conn: sa.Connection, batch_no: int, now: pl.DataFrame, start: datetime) -> None:
    """Append this batch's moves to ``alert_moves``, dropping what left the window once a run."""
    if batch_no <= 1:
        run(conn, "DELETE FROM alert_moves WHERE moved_at <= ?", [start])
    if now.height:
        _insert(conn, "alert_moves", now.to_arrow().select(_MOVES_ORDER))


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


def evaluate_batch(conn: sa.Connection, batch: BatchWrite, diff: pl.DataFrame, before: pl.DataFrame) -> int:
    """Raise and clear alerts for what ``batch`` just changed; returns how many were raised.

    Runs on the batch's open write transaction, after its prices are stored: ``diff`` is its
    ``diff_prices`` frame, ``before`` the current rows that was computed against. Does nothing
    when the batch carries no ``alert_thresholds``.

    Only the groups the batch touched are judged (``rules.batch_view``); the state of every
    other group is what the last batch left. An event a fetch failed on is not judged (the
    state rules need every book's set); if it changed meanwhile, its next whole batch judges all
    of its groups (``_Kept.deferred``).
    """
    t = batch.alert_thresholds
    if t is None or diff.is_empty():
        return 0
    at = to_db_time(batch.observed_at)
    start = t.window_start(at)
    path, token = _store_key(conn), uuid.uuid4().hex
    kept = _KEPT.pop(path, None)  # back in _KEPT only once the batch is evaluated (and its token written)
    failed = {s.sr_id for s in batch.statuses if s.books_failed}
    spoken = frozenset({s.sr_id for s in batch.statuses} | {p[0] for p in batch.scraped})
    judge = (kept.deferred & spoken) - failed if kept else frozenset()
    if kept is None or not _swap_token(conn, kept, token):
        kept, judge = _read_back(conn, token, start), frozenset()
    kept.token = token
    view = rules.batch_view(diff, before, at, judge)
    now = view.moves
    moved = frozenset(now.get_column("sr_id").unique().to_list())
    window = _window(kept.chunks, now, start, moved) if now.height else now
    obs = rules.observe(view, diff, _whole_pairs(batch), window, t, kept.open, set(kept.open_pulls.values()), judge,
                        bool(kept.open_steam))
    new, clear = rules.settle(obs, kept.ledger, t, at) if obs else ([], [])
    stored = _write(conn, batch, at, new, clear) if new or clear else []
    _append_moves(conn, batch.batch_no, now, start)
    _settle(kept, clear, stored, at, start, prune=batch.batch_no <= 1)
    kept.chunks = tuple(c for c in kept.chunks if c.last > start) + ((_Chunk(at, moved, now),) if now.height else ())
    changed_failed = failed & set(view.touched["sr_id"].unique().to_list()) if failed else set()
    kept.deferred = frozenset((kept.deferred - spoken) | changed_failed)
    _put(conn, kept)
    return len(new)


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
