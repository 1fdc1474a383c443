"""The database schema as SQLAlchemy Core tables, and the ordered steps that build it.

A database records its version in ``schema_version``; ``migrate`` applies the steps it has not
seen yet, in order, in the caller's transaction, so a file is never left half-upgraded. Step 1
creates the tables as they are written below. A later change to a table is a *new* step
(``ALTER …``) appended to ``STEPS``, and step 1 must then keep creating the version-1 shape.

Conventions every reader can rely on:

* Timestamps are ``TIMESTAMP`` (no zone) holding UTC; the store returns them as aware UTC.
* JSON is stored as text (portable to PostgreSQL); ``Store`` decodes it where it returns dicts.
* ``odds_current`` is keyed on ``line_key`` = ``line`` with ``NO_LINE`` standing in for "this
  market has no line": a NULL can never be a key (NULLs are all distinct), and 0 is a real
  handicap. ``line`` itself stays NULL for such markets and is what every read returns.
  The key is kept by the writer, not by an index (step 2 says why).
* ``odds_history`` has no index: it is appended a batch at a time and re-clustered by
  ``cleanup`` (``maintenance.HISTORY_ORDER``), so DuckDB's per-row-group min/max on
  ``sr_id`` skips everything but the event being read.
* ``run_progress."at"`` is a reserved word in DuckDB: quote it in hand-written SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

#: ``odds_current.line_key`` for markets without a line (no real line is anywhere near it).
NO_LINE = -1_000_000.0

metadata = sa.MetaData()

_run_id_seq = sa.Sequence("scrape_runs_id_seq", metadata=metadata)
_request_id_seq = sa.Sequence("run_requests_id_seq", metadata=metadata)


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def _text(name: str, nullable: bool = True, default: str | None = None) -> sa.Column:
    return sa.Column(name, sa.Text, nullable=nullable, server_default=default)


def _key(name: str, type_: type[sa.types.TypeEngine], keyed: bool) -> sa.Column:
    """A key column: part of the primary key in version 1, plain NOT NULL since step 2."""
    return sa.Column(name, type_, primary_key=keyed, nullable=False)


schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    _ts("updated_at", nullable=False),
)

scrape_runs = sa.Table(
    "scrape_runs",
    metadata,
    sa.Column("id", sa.BigInteger, _run_id_seq, server_default=_run_id_seq.next_value(), primary_key=True),
    _text("trigger", nullable=False),
    _text("kind", nullable=False),
    _text("status", nullable=False),
    _text("books", nullable=False),  # JSON list of book names
    _ts("started_at", nullable=False),
    _ts("finished_at"),
    _ts("heartbeat_at", nullable=False),
    sa.Column("events_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events_scraped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events_failed", sa.Integer, nullable=False, server_default="0"),
    _text("discovery"),  # JSON: book -> discovery counts / timings / failures
    _text("book_counts"),  # JSON: book -> counts
    _text("book_timings"),  # JSON: book -> seconds
    _text("book_errors"),  # JSON: book -> error summary
    _text("summary"),  # JSON: everything finish_run was given
    _text("error"),
)

def _run_progress(meta: sa.MetaData, keyed: bool) -> sa.Table:
    return sa.Table(
        "run_progress",
        meta,
        _key("run_id", sa.BigInteger, keyed),
        _key("seq", sa.Integer, keyed),
        sa.Column("at", sa.DateTime(timezone=False), nullable=False, quote=True),
        _text("kind", nullable=False),
        _text("message", nullable=False, default=""),
        _text("data"),  # JSON
        sa.Column("batches_done", sa.Integer),
        sa.Column("batches_total", sa.Integer),
    )


run_progress = _run_progress(metadata, keyed=False)


def _event_scrape_status(meta: sa.MetaData, keyed: bool) -> sa.Table:
    return sa.Table(
        "event_scrape_status",
        meta,
        _key("run_id", sa.BigInteger, keyed),
        _key("sr_id", sa.Text, keyed),
        _text("books_requested", nullable=False),  # JSON list
        _text("books_scraped", nullable=False),  # JSON list
        _text("books_failed", nullable=False),  # JSON list
        _text("errors", nullable=False),  # JSON: book -> "kind: message"
        sa.Column("duration_ms", sa.Integer, nullable=False),
        _text("book_event_ids", nullable=False),  # JSON: book -> book event id
        _ts("observed_at", nullable=False),
    )


event_scrape_status = _event_scrape_status(metadata, keyed=False)


events = sa.Table(
    "events",
    metadata,
    sa.Column("sr_id", sa.Text, primary_key=True),
    _ts("kickoff", nullable=False),
    _text("country", nullable=False),
    _text("tournament", nullable=False),
    _text("home", nullable=False),
    _text("away", nullable=False),
    _ts("first_seen", nullable=False),
    _ts("last_seen", nullable=False),
)

bookmaker_events = sa.Table(
    "bookmaker_events",
    metadata,
    sa.Column("bookmaker", sa.Text, primary_key=True),
    sa.Column("book_event_id", sa.Text, primary_key=True),
    _text("sr_id", nullable=False),
    _ts("last_seen", nullable=False),
)

def _odds_current(meta: sa.MetaData, keyed: bool) -> sa.Table:
    return sa.Table(
        "odds_current",
        meta,
        _key("sr_id", sa.Text, keyed),
        _key("bookmaker", sa.Text, keyed),
        _key("market", sa.Text, keyed),
        _key("line_key", sa.Double, keyed),
        _key("outcome", sa.Text, keyed),
        sa.Column("line", sa.Double),
        sa.Column("odds", sa.Double, nullable=False),
        sa.Column("available", sa.Boolean, nullable=False),
        _ts("changed_at", nullable=False),
        _ts("last_seen_at", nullable=False),
        _ts("unavailable_at"),
    )


odds_current = _odds_current(metadata, keyed=False)


odds_history = sa.Table(
    "odds_history",
    metadata,
    _text("sr_id", nullable=False),
    _text("bookmaker", nullable=False),
    _text("market", nullable=False),
    sa.Column("line", sa.Double),
    _text("outcome", nullable=False),
    sa.Column("odds", sa.Double, nullable=False),
    sa.Column("available", sa.Boolean, nullable=False),
    _ts("observed_at", nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
)

unmapped_markets = sa.Table(
    "unmapped_markets",
    metadata,
    sa.Column("bookmaker", sa.Text, primary_key=True),
    sa.Column("market_id", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, primary_key=True),
    _text("name", nullable=False, default=""),
    _text("detail", nullable=False, default=""),  # one sample: the most frequent detail of the last batch
    sa.Column("occurrences", sa.BigInteger, nullable=False),
    _ts("first_seen", nullable=False),
    _ts("last_seen", nullable=False),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    _text("value", nullable=False),  # JSON
    _ts("updated_at", nullable=False),
)

run_requests = sa.Table(
    "run_requests",
    metadata,
    sa.Column("id", sa.BigInteger, _request_id_seq, server_default=_request_id_seq.next_value(), primary_key=True),
    _text("kind", nullable=False),
    _text("payload"),  # JSON
    _text("status", nullable=False),  # PENDING / CLAIMED / DONE / FAILED
    _ts("created_at", nullable=False),
    _ts("claimed_at"),
    _ts("finished_at"),
    _text("message", nullable=False, default=""),
    sa.Column("run_id", sa.BigInteger),
)

store_state = sa.Table(
    "store_state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    _text("value", nullable=False),  # JSON; the store's own bookkeeping (e.g. history clustering)
    _ts("updated_at", nullable=False),
)

#: The tables ``table_counts`` reports: all but the store's own bookkeeping.
TABLES: tuple[str, ...] = tuple(
    t.name for t in metadata.sorted_tables if t.name not in ("schema_version", "store_state")
)


#: Version 1 kept a primary key (an ART index) on the three tables that grow with every batch.
_V1 = sa.MetaData()
_V1_KEYED = {t.name: t for t in (_run_progress(_V1, keyed=True), _event_scrape_status(_V1, keyed=True),
                                 _odds_current(_V1, keyed=True))}

#: Physical order step 2 rewrites each unkeyed table in: what its reads and the batch diff filter on.
_UNKEYED_ORDER = {
    "run_progress": ("run_id", "seq"),
    "event_scrape_status": ("run_id", "sr_id"),
    "odds_current": ("sr_id", "bookmaker", "market", "line_key", "outcome"),
}


def _step_1_create_tables(conn: sa.Connection) -> None:
    tables = [_V1_KEYED.get(t.name, t) for t in metadata.sorted_tables if t.name != "schema_version"]
    metadata.create_all(conn, checkfirst=False, tables=[t for t in tables if t.metadata is metadata])
    _V1.create_all(conn, checkfirst=False)


def _step_2_drop_growing_keys(conn: sa.Connection) -> None:
    """odds_current, event_scrape_status and run_progress lose their primary key.

    Their ART indexes cost more than the tables (odds_current: ~150 B per row, 100 MB for 675k
    prices against 10 MB of data; event_scrape_status would pass 600 MB in 30 days), and
    maintaining and checkpointing them was most of a batch's write time. Nothing needs them:
    the one writer decides insert-or-update by joining on the key (``batch.diff_prices``, the
    MERGEs), under the exclusive lock. DuckDB cannot drop a constraint, so each table is
    rewritten, in the order its reads filter on.
    """
    for name, order in _UNKEYED_ORDER.items():
        table = metadata.tables[name]
        rebuilt = table.to_metadata(sa.MetaData(), name=f"{name}_unkeyed")
        rebuilt.create(conn)
        old = sa.table(name, *(sa.column(c.name) for c in table.columns))
        conn.execute(sa.insert(rebuilt).from_select(
            [c.name for c in table.columns], sa.select(*old.c).order_by(*(old.c[c] for c in order))))
        conn.execute(sa.text(f"DROP TABLE {name}"))
        conn.execute(sa.text(f"ALTER TABLE {name}_unkeyed RENAME TO {name}"))


Step = Callable[[sa.Connection], None]

#: Upgrade steps; the database's version is the number of steps applied.
STEPS: tuple[Step, ...] = (_step_1_create_tables, _step_2_drop_growing_keys)


class SchemaError(RuntimeError):
    """The file was written by a newer version of oddsdesk than this one."""


def current_version(conn: sa.Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0)


def migrate(conn: sa.Connection, steps: Sequence[Step] = STEPS) -> int:
    """Bring the database to ``len(steps)``; returns the version it was at before."""
    before = current_version(conn)
    if before > len(steps):
        raise SchemaError(f"database schema is version {before}, this code knows up to {len(steps)}")
    if before == len(steps):
        return before
    if before == 0:
        schema_version.create(conn, checkfirst=True)
    for step in steps[before:]:
        step(conn)
    now = datetime.now(UTC).replace(tzinfo=None)
    conn.execute(sa.delete(schema_version))
    conn.execute(sa.insert(schema_version).values(version=len(steps), updated_at=now))
    return before
