"""The database: created and versioned on first use, re-opened as is, upgraded in order (a DuckDB
file or a PostgreSQL database; the upgrades of old files are DuckDB's)."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from engine.store import SchemaError, Store
from engine.store.db import Database
from engine.store.schema import PG_INDEXES, STEPS, TABLES, migrate


def version(store: Store) -> list[int]:
    return store.query("SELECT version FROM schema_version")["version"].to_list()


def test_first_use_creates_the_folder_every_table_and_the_version(tmp_path):
    store = Store(tmp_path / "new" / "folder" / "odds.duckdb")
    counts = store.table_counts()

    assert (tmp_path / "new" / "folder" / "odds.duckdb").exists()
    assert set(counts) == set(TABLES) >= {
        "scrape_runs", "run_progress", "event_scrape_status", "events", "bookmaker_events", "odds_current",
        "odds_history", "unmapped_markets", "settings", "run_requests"}
    assert set(counts.values()) == {0}
    assert version(store) == [len(STEPS)]


def test_first_use_of_either_backend_creates_every_table_and_only_postgres_gets_indexes(store_target):
    store = store_target.store()

    assert set(store.table_counts()) == set(TABLES) and version(store) == [len(STEPS)]
    if store_target.backend == "postgres":
        names = store.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")["indexname"]
        assert set(PG_INDEXES) <= set(names)
    else:
        assert store.query("SELECT count(*) AS n FROM duckdb_indexes()")["n"].item() == 0


def test_reopening_keeps_data_and_does_not_migrate_again(store_target):
    run_id = store_target.store().start_run("scheduled", ["betpawa"])
    again = store_target.store()

    assert again.run(run_id)["trigger"] == "scheduled"
    assert version(again) == [len(STEPS)]


def test_an_empty_file_from_before_the_schema_is_brought_up_to_date(tmp_path):
    path = tmp_path / "odds.duckdb"
    duckdb.connect(str(path)).close()

    store = Store(path)
    assert version(store) == [len(STEPS)]
    assert store.table_counts()["odds_current"] == 0


def test_an_older_database_gets_only_the_missing_steps_and_keeps_its_rows(store_target):
    store = store_target.store()
    run_id = store.start_run("scheduled", ["betpawa"])
    db = Database(store_target.database_url or store_target.db_path, store_target.db_path.parent)

    def add_note(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE scrape_runs ADD COLUMN note TEXT DEFAULT 'none'"))

    with db.write() as conn:
        assert migrate(conn, (*STEPS, add_note)) == len(STEPS)
    with db.write() as conn:
        assert migrate(conn, (*STEPS, add_note)) == len(STEPS) + 1  # already there: nothing to do

    assert store.query("SELECT note FROM scrape_runs WHERE id = ?", [run_id])["note"].to_list() == ["none"]
    assert version(store) == [len(STEPS) + 1]


def test_a_database_from_a_newer_version_is_refused(store_target):
    store_target.store().table_counts()
    store_target.execute("UPDATE schema_version SET version = 99")

    with pytest.raises(SchemaError, match="version 99"):
        store_target.store().runs()


def test_a_version_1_file_keeps_its_rows_and_loses_the_growing_tables_primary_keys(tmp_path):
    from datetime import UTC, datetime

    import polars as pl

    from engine.store.schema import NO_LINE
    from engine.store.types import PRICE_SCHEMA, UNMAPPED_SCHEMA, BatchWrite, EventRow, ScrapeStatusRow

    path = tmp_path / "odds.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        migrate(conn, STEPS[:1])
        conn.execute(sa.text("INSERT INTO odds_current VALUES ('61300001', 'betpawa', '1x2_ft', :no_line, 'home', "
                             "NULL, 2.1, true, '2026-03-01 12:00', '2026-03-01 12:00', NULL)"), {"no_line": NO_LINE})
        conn.execute(sa.text("INSERT INTO run_progress VALUES "
                             "(1, 1, '2026-03-01 12:00', 'CYCLE_START', '', NULL, NULL, NULL)"))
    engine.dispose()
    keyed = "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY' ORDER BY 1"
    con = duckdb.connect(str(path))
    assert {"odds_current", "run_progress", "event_scrape_status"} <= {r[0] for r in con.execute(keyed).fetchall()}
    con.close()

    store = Store(path)
    assert version(store) == [len(STEPS)]
    assert not {"odds_current", "run_progress", "event_scrape_status"} & set(store.query(keyed)["table_name"])
    assert store.current_prices()["odds"].to_list() == [2.1]
    assert store.run_progress(1)["kind"].to_list() == ["CYCLE_START"]

    run_id = store.start_run("scheduled", ["betpawa"])
    at = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    result = store.store_batch(BatchWrite(
        run_id=run_id, batch_no=1, observed_at=at,
        events=[EventRow("61300001", at, "England", "Premier League", "Arsenal", "Chelsea")], book_events=[],
        prices=pl.DataFrame([("61300001", "betpawa", "1x2_ft", None, "home", 2.2, True)], schema=PRICE_SCHEMA,
                            orient="row"),
        scraped=[("61300001", "betpawa")],
        statuses=[ScrapeStatusRow("61300001", ("betpawa",), ("betpawa",), (), {}, 5)],
        unmapped=pl.DataFrame(schema=UNMAPPED_SCHEMA),
    ))
    assert (result.inserted, result.changed) == (0, 1)
    assert store.current_prices()["odds"].to_list() == [2.2]


def test_a_version_3_file_keeps_every_history_row_when_history_goes_compact(tmp_path):
    """Step 4 moves odds_history into integer-keyed rows behind a view of the same name and columns."""
    path = tmp_path / "odds.duckdb"
    engine = sa.create_engine(f"duckdb:///{path}", poolclass=sa.pool.NullPool)
    rows = [("61300001", "betpawa", "1x2_ft", None, "home", 2.1, True, "2026-03-01 12:00:00", 1),
            ("61300001", "bet9ja", "over_under_ft", 2.5, "over", 1.8, False, "2026-03-01 12:05:00", 2),
            ("61300002", "betpawa", "1x2_ft", None, "home", 3.4, True, "2026-03-01 12:05:00", 2)]
    with engine.begin() as conn:
        migrate(conn, STEPS[:3])
        for row in rows:
            conn.execute(sa.text("INSERT INTO odds_history VALUES (:a, :b, :c, :d, :e, :f, :g, :h, :i)"),
                         dict(zip("abcdefghi", row)))
    engine.dispose()

    store = Store(path)
    assert version(store) == [len(STEPS)]
    back = store.query("SELECT sr_id, bookmaker, market, line, outcome, odds, available, "
                       "strftime(observed_at, '%Y-%m-%d %H:%M:%S') AS t, run_id FROM odds_history ORDER BY t, bookmaker")
    assert sorted(back.rows()) == sorted(rows)
    assert store.table_counts()["odds_history"] == 3
    assert store.query("SELECT count(*) AS n FROM price_kinds")["n"].item() == 2  # home 1x2 shared by two events


def test_a_version_7_database_loses_alert_moves_and_keeps_its_alerts(store_target):
    """Step 8 drops alert_moves (the alert window is read back from odds_history since)."""
    url = store_target.database_url or f"duckdb:///{store_target.db_path}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        migrate(conn, STEPS[:7])
        conn.execute(sa.text(
            "INSERT INTO alerts (id, created_at, run_id, kind, sr_id, bookmaker, market, line, outcome, size, message, "
            "data, dedup_key) VALUES (1, '2026-03-01 12:00', 1, 'margin_gap', '61300001', 'betpawa', '1x2_ft', NULL, "
            "NULL, 4.2, 'a gap', '{}', 'margin_gap|61300001|1x2_ft|-1000000.0||betpawa')"))
        conn.execute(sa.text("INSERT INTO alert_moves VALUES ('61300001', 'sportybet', '1x2_ft', -1000000.0, NULL, "
                             "'home', '2026-03-01 12:00', 2.1, true, 1.9, true)"))
    engine.dispose()

    store = store_target.store()
    assert version(store) == [len(STEPS)] and len(STEPS) >= 8
    assert "alert_moves" not in store.table_counts()
    with pytest.raises(Exception, match="(?i)alert_moves"):
        store.query("SELECT * FROM alert_moves")
    assert store.alerts()["message"].to_list() == ["a gap"]
