"""The database file: created and versioned on first use, re-opened as is, upgraded in order."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from engine.store import SchemaError, Store
from engine.store.db import Database
from engine.store.schema import STEPS, TABLES, migrate


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


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path):
    path = tmp_path / "odds.duckdb"
    run_id = Store(path).start_run("scheduled", ["betpawa"])
    again = Store(path)

    assert again.run(run_id)["trigger"] == "scheduled"
    assert version(again) == [len(STEPS)]


def test_an_empty_file_from_before_the_schema_is_brought_up_to_date(tmp_path):
    path = tmp_path / "odds.duckdb"
    duckdb.connect(str(path)).close()

    store = Store(path)
    assert version(store) == [len(STEPS)]
    assert store.table_counts()["odds_current"] == 0


def test_an_older_file_gets_only_the_missing_steps_and_keeps_its_rows(tmp_path):
    path = tmp_path / "odds.duckdb"
    store = Store(path)
    run_id = store.start_run("scheduled", ["betpawa"])
    db = Database(path)

    def add_note(conn: sa.Connection) -> None:
        conn.execute(sa.text("ALTER TABLE scrape_runs ADD COLUMN note TEXT DEFAULT 'none'"))

    with db.write() as conn:
        assert migrate(conn, (*STEPS, add_note)) == len(STEPS)
    with db.write() as conn:
        assert migrate(conn, (*STEPS, add_note)) == len(STEPS) + 1  # already there: nothing to do

    assert store.query("SELECT note FROM scrape_runs WHERE id = ?", [run_id])["note"].to_list() == ["none"]
    assert version(store) == [len(STEPS) + 1]


def test_a_file_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "odds.duckdb"
    Store(path).table_counts()
    con = duckdb.connect(str(path))
    con.execute("UPDATE schema_version SET version = 99")
    con.close()

    with pytest.raises(SchemaError, match="version 99"):
        Store(path).runs()
