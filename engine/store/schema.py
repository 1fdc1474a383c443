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
  The key is kept by the writer, not by an index (step 2 says why); PostgreSQL also has a
  unique index on it (step 7).
* ``odds_history`` is a view (step 4) over ``odds_history_data``, whose rows name their event
  and price by small integers (``history_events``, ``price_kinds``); writes go through
  ``history.append_history``. On DuckDB it has no index: it is appended a batch at a time and
  re-clustered by ``cleanup`` (``maintenance.HISTORY_ORDER``), so DuckDB's per-row-group
  min/max on ``event_no`` skips everything but the event being read. PostgreSQL, which has no
  such min/max, gets the indexes of step 7 (``PG_INDEXES``).
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

# --- alerts (schema step 3): engine/store/alerts.py writes them, engine/markets/alerts.py says why
_alert_id_seq = sa.Sequence("alerts_id_seq", metadata=metadata)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger, _alert_id_seq, server_default=_alert_id_seq.next_value(), primary_key=True),
    _ts("created_at", nullable=False),  # the batch's observed_at
    sa.Column("run_id", sa.BigInteger, nullable=False),
    _text("kind", nullable=False),  # steam | margin_gap | competitors_pulled | betpawa_pulled
    _text("sr_id", nullable=False),
    _text("bookmaker", nullable=False),  # the book(s) it is about, comma-separated in BOOKS order
    _text("market", nullable=False),
    sa.Column("line", sa.Double),
    _text("outcome"),  # null for market-level alerts
    sa.Column("size", sa.Double),  # steam: move %; margin_gap: points over the best competitor
    _text("message", nullable=False),
    _text("data", nullable=False),  # JSON: the numbers behind the message
    _text("dedup_key", nullable=False),
    _ts("cleared_at"),  # the condition stopped holding (or a worse alert superseded this one)
    _ts("acknowledged_at"),
)

#: Every price change of the last alert window, with the price before it: what steam was measured
#: on, until step 8 dropped it (the window is read back from odds_history now).
alert_moves = sa.Table(
    "alert_moves",
    metadata,
    _text("sr_id", nullable=False),
    _text("bookmaker", nullable=False),
    _text("market", nullable=False),
    sa.Column("line_key", sa.Double, nullable=False),
    sa.Column("line", sa.Double),
    _text("outcome", nullable=False),
    _ts("moved_at", nullable=False),  # the batch's observed_at
    sa.Column("from_odds", sa.Double, nullable=False),
    sa.Column("from_available", sa.Boolean, nullable=False),
    sa.Column("to_odds", sa.Double, nullable=False),
    sa.Column("to_available", sa.Boolean, nullable=False),
)

_STEP_3_TABLES = (alerts, alert_moves)

# --- compact history (schema step 4): ``odds_history`` becomes a view over these three ------
#: Its own MetaData: step 1 must keep creating the version-1 ``odds_history`` table.
history_metadata = sa.MetaData()

#: One row per event that has history; ``event_no`` is what history rows carry.
history_events = sa.Table(
    "history_events",
    history_metadata,
    sa.Column("event_no", sa.Integer, nullable=False),
    _text("sr_id", nullable=False),
)

#: One row per (book, market, line, outcome) ever seen: a few thousand, whatever the history size.
price_kinds = sa.Table(
    "price_kinds",
    history_metadata,
    sa.Column("kind_id", sa.Integer, nullable=False),
    _text("bookmaker", nullable=False),
    _text("market", nullable=False),
    sa.Column("line", sa.Double),
    _text("outcome", nullable=False),
)

odds_history_data = sa.Table(
    "odds_history_data",
    history_metadata,
    sa.Column("event_no", sa.Integer, nullable=False),
    sa.Column("kind_id", sa.Integer, nullable=False),
    sa.Column("odds", sa.Double, nullable=False),
    sa.Column("available", sa.Boolean, nullable=False),
    _ts("observed_at", nullable=False),
    sa.Column("run_id", sa.BigInteger, nullable=False),
)

#: ``odds_history`` as every reader knows it (the version-1 columns), from the compact table.
HISTORY_VIEW = """
CREATE VIEW odds_history AS
SELECT e.sr_id, k.bookmaker, k.market, k.line, k.outcome, h.odds, h.available, h.observed_at, h.run_id
FROM odds_history_data h JOIN history_events e USING (event_no) JOIN price_kinds k USING (kind_id)
"""

#: The tables ``table_counts`` reports: all but the store's own bookkeeping, the history keys and
#: what a later step dropped.
TABLES: tuple[str, ...] = tuple(
    t.name for t in metadata.sorted_tables if t.name not in ("schema_version", "store_state", alert_moves.name)
)
#: Where ``table_counts`` counts a table's rows: odds_history's are in its data table (counting the
#: view would join every row for nothing).
COUNTED_IN: dict[str, str] = {"odds_history": "odds_history_data"}


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
    later = {"schema_version", *(t.name for t in _STEP_3_TABLES)}
    tables = [_V1_KEYED.get(t.name, t) for t in metadata.sorted_tables if t.name not in later]
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


def _step_3_alerts(conn: sa.Connection) -> None:
    """The movement alerts and the price moves they are measured on (engine/store/alerts.py)."""
    metadata.create_all(conn, checkfirst=False, tables=list(_STEP_3_TABLES))


def _step_4_compact_history(conn: sa.Connection) -> None:
    """odds_history's rows move to ``odds_history_data`` keyed by two small integers, and
    ``odds_history`` becomes a view with the old columns, so every reader is unchanged.

    History is most of the file: the event's id and the four text/float columns naming the price
    took ~4 of its 7.3 bytes per row (DuckDB dictionary-codes each per row group, and line is a
    nullable float). An event number that repeats along the clustered order packs to almost
    nothing and one kind id replaces four columns: 7.3 → 4.3 bytes per row on the simulator's
    fortnight, reads of one event as fast as before (its ``event_no`` is one constant the
    join pushes into the scan's min/max pruning). See ``history.append_history`` for the writes.
    """
    history_metadata.create_all(conn, checkfirst=False)
    run = conn.exec_driver_sql
    run("""INSERT INTO history_events
        SELECT row_number() OVER (ORDER BY sr_id), sr_id FROM (SELECT DISTINCT sr_id FROM odds_history) AS s""")
    run("""INSERT INTO price_kinds
        SELECT row_number() OVER (ORDER BY bookmaker, market, line, outcome), bookmaker, market, line, outcome
        FROM (SELECT DISTINCT bookmaker, market, line, outcome FROM odds_history) AS k""")
    run("""INSERT INTO odds_history_data
        SELECT e.event_no, k.kind_id, h.odds, h.available, h.observed_at, h.run_id
        FROM odds_history h JOIN history_events e USING (sr_id)
        JOIN price_kinds k ON k.bookmaker = h.bookmaker AND k.market = h.market AND k.outcome = h.outcome
                          AND k.line IS NOT DISTINCT FROM h.line
        ORDER BY e.event_no, h.observed_at, k.kind_id""")
    run("DROP TABLE odds_history")
    run(HISTORY_VIEW)


# --- margin rollups (schema steps 5 and 6): engine/store/rollups.py writes and reads them -----
#: Its own MetaData, as step 4's: step 1 must not create these tables.
rollup_metadata = sa.MetaData()


def _rollup_sums() -> list[sa.Column]:
    """A rollup row's grain, keys and additive sums (the same in steps 5 and 6)."""
    return [
        _text("grain", nullable=False),
        _text("bookmaker", nullable=False),
        _text("market", nullable=False),
        _text("country"),
        _text("tournament"),
        _text("bucket"),
        sa.Column("margin_x_seconds", sa.Double, nullable=False),
        sa.Column("margin_seconds", sa.Double, nullable=False),
        sa.Column("seconds", sa.Double),
        sa.Column("margin_states", sa.BigInteger),
        sa.Column("opening_states", sa.BigInteger),
        sa.Column("changes", sa.BigInteger),
        sa.Column("odds_changes", sa.BigInteger),
        sa.Column("price_seconds", sa.Double),
    ]


#: Step 5's first shape (hours only; step 6 replaces it). Margin analytics' additive sums
#: (``analytics.py``) per UTC hour of state time, at two grains:
#: ``grain = 'cell'``: book × market × country × tournament (``bucket`` null);
#: ``grain = 'bucket'``: book × market × time-to-kickoff bucket (country, tournament and the
#: cell-only sums null). ``margin_states`` counts states begun by a change inside the hour,
#: ``opening_states`` the one carried in at its start (counted only where a period starts).
_margin_rollup_v5 = sa.Table(
    "margin_rollup",
    rollup_metadata,
    _ts("hour", nullable=False),
    *_rollup_sums(),
)

#: The hours rolled up, with when: an hour without any price is rolled up too (and has no rows).
_margin_rollup_hours_v5 = sa.Table(
    "margin_rollup_hours",
    rollup_metadata,
    _ts("hour", nullable=False),
    _ts("rolled_at", nullable=False),
)

#: The latest history row of every price of the events still to kick off, as of the end of the
#: last hour rolled up (``store_state`` key ``margin_rollup_state_at``): the state the next hour
#: and the page's live remainder start from, without re-reading all history before it.
margin_rollup_state = sa.Table(
    "margin_rollup_state",
    rollup_metadata,
    sa.Column("event_no", sa.Integer, nullable=False),
    sa.Column("kind_id", sa.Integer, nullable=False),
    sa.Column("odds", sa.Double, nullable=False),
    sa.Column("available", sa.Boolean, nullable=False),
)


def _step_5_margin_rollups(conn: sa.Connection) -> None:
    """Hourly margin-analytics sums, so the margin page sums hours instead of rebuilding every
    market from history (engine/store/rollups.py)."""
    rollup_metadata.create_all(conn, checkfirst=False)


#: Step 6: slices of any length. Its own MetaData: steps 1 and 5 must not create these tables.
slice_metadata = sa.MetaData()

#: Margin analytics' additive sums (``analytics.py``) per slice of state time: an hour, or a
#: local day of the desk (the sum of its hours, ``rollups.py``), at two grains:
#: ``grain = 'cell'``: book × market × country × tournament (``bucket`` null);
#: ``grain = 'bucket'``: book × market × time-to-kickoff bucket (country, tournament and the
#: cell-only sums null). ``margin_states`` counts states begun by a change inside the slice,
#: ``opening_states`` those carried in at its start (counted only where a period starts).
margin_rollup = sa.Table(
    "margin_rollup",
    slice_metadata,
    _ts("slice_start", nullable=False),
    sa.Column("slice_hours", sa.Integer, nullable=False),
    *_rollup_sums(),
)

#: The slices rolled up, with when: a slice without any price is rolled up too (and has no rows).
margin_rollup_slices = sa.Table(
    "margin_rollup_slices",
    slice_metadata,
    _ts("slice_start", nullable=False),
    sa.Column("slice_hours", sa.Integer, nullable=False),
    _ts("rolled_at", nullable=False),
)


def _step_6_margin_slices(conn: sa.Connection) -> None:
    """Rollups as slices of any length: hours, and the desk's days summed from them, so a week
    is seven rows per cell instead of 168 and old hours can go (engine/store/rollups.py). Step
    5's hourly tables held only derived sums: they are dropped, and the scheduler rolls the
    hours up again."""
    conn.exec_driver_sql("DROP TABLE margin_rollup")
    conn.exec_driver_sql("DROP TABLE margin_rollup_hours")
    slice_metadata.create_all(conn, checkfirst=False)


#: PostgreSQL's indexes (schema step 7): name → (table, ``CREATE … INDEX`` text after the name).
#: ``maintenance.cluster_history`` builds odds_history_data's again on the re-sorted copy.
PG_INDEXES: dict[str, tuple[str, str]] = {
    # The batch's diff reads its events' prices, and updates them by key; a second row with one
    # key is refused here too, not only by the writer's diff.
    "odds_current_key": ("odds_current",
                         "UNIQUE INDEX {name} ON {table} (sr_id, bookmaker, market, line_key, outcome)"),
    # The batch's MERGE of its events' status rows; a run's status page.
    "event_scrape_status_run": ("event_scrape_status", "INDEX {name} ON {table} (run_id, sr_id)"),
    # ``add_progress`` numbers a run's next row; a run's progress page.
    "run_progress_run": ("run_progress", "INDEX {name} ON {table} (run_id, seq)"),
    # ``append_history`` looks every batch's events up; a reader of one event finds its number.
    "history_events_sr_id": ("history_events", "UNIQUE INDEX {name} ON {table} (sr_id)"),
    # One event's history (the event page), in time order.
    "odds_history_data_event": ("odds_history_data", "INDEX {name} ON {table} (event_no, observed_at)"),
    # Time ranges (retention, rollups of recent hours): rows arrive in time order, so a block-range
    # index of a few pages serves them; a B-tree on 100M timestamps would cost gigabytes.
    "odds_history_data_observed": ("odds_history_data", "INDEX {name} ON {table} USING brin (observed_at)"),
    # The comparison grid: one market (and line) across all events; 93 → 40 ms server time on 1M prices.
    "odds_current_market": ("odds_current", "INDEX {name} ON {table} (market, line_key)"),
}


def pg_index_sql(table: str, on: str | None = None, suffix: str = "") -> dict[str, str]:
    """``table``'s PostgreSQL indexes: name → ``CREATE INDEX`` statement, built on ``on`` (a copy
    of it; default: itself) under the name with ``suffix``."""
    return {name: f"CREATE {ddl.format(name=name + suffix, table=on or table)}"
            for name, (of, ddl) in PG_INDEXES.items() if of == table}


def _step_7_postgres_indexes(conn: sa.Connection) -> None:
    """PostgreSQL only: the indexes its writes and reads need. Nothing on DuckDB.

    DuckDB skips row groups by their min/max (zone maps), and the store keeps what it reads in
    the order it reads it (step 2's rewrite, ``cleanup``'s history re-sort), so it needs no
    index, and its ART indexes cost more than they gave (step 2). PostgreSQL has no zone maps:
    without these, every batch's price diff, status MERGE and progress row, and every read of
    one event, would scan a whole table. odds_current also leaves half of each page free: every
    batch updates each price it sees again (``last_seen_at``, no indexed column), and with room
    for a second version of every row on its page that update stays there (a HOT update, the
    previous round's version pruned) and writes no index entry. At 70% free space only ~half
    the updates were HOT; at 50%, all.
    """
    if conn.dialect.name != "postgresql":
        return
    for table in dict.fromkeys(t for t, _ in PG_INDEXES.values()):
        for sql in pg_index_sql(table).values():
            conn.exec_driver_sql(sql)
    conn.exec_driver_sql("ALTER TABLE odds_current SET (fillfactor = 50)")


def _step_8_drop_alert_moves(conn: sa.Connection) -> None:
    """alert_moves goes (both backends). Alert evaluation keeps the window's moves in memory and
    reads them back from odds_history, which has every change, when it has to
    (engine/store/alerts.py); appending them to a table of their own cost each batch's commit
    (its checkpoint) more than the rest of the evaluation. Its rows were a copy of that history."""
    conn.exec_driver_sql("DROP TABLE alert_moves")


Step = Callable[[sa.Connection], None]

#: Upgrade steps; the database's version is the number of steps applied.
STEPS: tuple[Step, ...] = (_step_1_create_tables, _step_2_drop_growing_keys, _step_3_alerts,
                           _step_4_compact_history, _step_5_margin_rollups, _step_6_margin_slices,
                           _step_7_postgres_indexes, _step_8_drop_alert_moves)


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
