"""The SQL notebook's connection refuses, by itself, everything but reading the store.

Each check runs a hostile statement through ``Store.notebook_query`` (what the page calls) and
asserts DuckDB's refusal and that nothing changed; where a statement is refused before it runs,
the same statement is also run on the bare notebook connection to show the connection would
refuse it anyway.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from app_fixtures import Seeded, seeded  # noqa: F401  (fixture)

from engine.store import Store, notebook
from engine.store.archive import archive_dir
from engine.store.notebook import NotebookRefusal, NotebookTimeout

RUNAWAY = "SELECT a.range * b.range AS x FROM range(100000) a, range(100000) b ORDER BY x DESC"


def fingerprint(store: Store) -> tuple:
    """Row counts and a checksum of the prices: what any write would change."""
    prices = store.query("SELECT count(*), sum(odds), max(last_seen_at) FROM odds_current").row(0)
    return tuple(sorted(store.table_counts().items())), prices


def refused_by_connection(store: Store, sql: str) -> duckdb.Error:
    with pytest.raises(duckdb.Error) as caught:
        store.notebook_query(sql)
    return caught.value


@pytest.mark.parametrize("sql", [
    "INSERT INTO settings VALUES ('x', '1', now())",
    "UPDATE odds_current SET odds = 1.01",
    "DELETE FROM events",
    "CREATE TABLE t AS SELECT 1 AS a",
    "DROP TABLE scrape_runs",
    "ALTER TABLE events ADD COLUMN y INTEGER",
    "TRUNCATE events",
])
def test_writes_are_refused_by_the_read_only_connection_and_change_nothing(seeded: Seeded, sql: str):
    before = fingerprint(seeded.store)
    error = refused_by_connection(seeded.store, sql)
    assert "read-only" in str(error) or "read only" in str(error)
    assert fingerprint(seeded.store) == before


def test_attaching_another_database_file_is_refused(seeded: Seeded, tmp_path: Path):
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as conn:
        conn.execute("CREATE TABLE secrets AS SELECT 'hunter2' AS password")
    error = refused_by_connection(seeded.store, f"ATTACH '{other}' AS o")
    assert isinstance(error, duckdb.PermissionException)
    fresh = tmp_path / "fresh.duckdb"
    refused_by_connection(seeded.store, f"ATTACH '{fresh}' AS f")
    assert not fresh.exists()


def test_copy_to_a_file_is_refused_and_no_file_appears(seeded: Seeded, tmp_path: Path):
    target = tmp_path / "x.csv"
    sql = f"COPY (SELECT * FROM events) TO '{target}'"
    with pytest.raises(NotebookRefusal, match="COPY is not allowed"):
        seeded.store.notebook_query(sql)
    with notebook.connect(seeded.store._db) as conn, pytest.raises(duckdb.PermissionException):
        conn.execute(sql)
    with pytest.raises(NotebookRefusal, match="EXPORT is not allowed"):
        seeded.store.notebook_query(f"EXPORT DATABASE '{tmp_path / 'dump'}'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_json('http://127.0.0.1:9/x.json')",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_files_urls_and_extensions_outside_the_store_are_refused(seeded: Seeded, sql: str):
    error = refused_by_connection(seeded.store, sql)
    assert isinstance(error, duckdb.PermissionException), error
    assert "root:" not in str(error)


@pytest.mark.parametrize("sql", [
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET allowed_directories = ['/']",
    "RESET enable_external_access",
])
def test_the_connection_settings_cannot_be_changed_back(seeded: Seeded, sql: str):
    error = refused_by_connection(seeded.store, sql)
    assert "configuration has been locked" in str(error)
    refused_by_connection(seeded.store, "SELECT * FROM read_csv('/etc/passwd')")


def test_only_one_statement_runs(seeded: Seeded):
    with pytest.raises(NotebookRefusal, match="one statement at a time"):
        seeded.store.notebook_query("SELECT 1; SELECT 2")
    assert seeded.store.notebook_query("SELECT 42 AS answer;").frame["answer"].to_list() == [42]


def test_a_runaway_query_is_stopped_and_the_store_stays_usable(seeded: Seeded):
    with pytest.raises(NotebookTimeout, match=r"^stopped after 1 s"):
        seeded.store.notebook_query(RUNAWAY, timeout_s=1.0)
    seeded.store.put_settings({"notebook_probe": 1})  # the shared lock was released: a writer gets in
    assert seeded.store.get_settings()["notebook_probe"] == 1
    events = seeded.store.notebook_query("SELECT count(*) AS n FROM events").frame["n"][0]
    assert events == seeded.store.events().height


def test_results_are_cut_at_the_row_limit_and_say_so(seeded: Seeded):
    cut = seeded.store.notebook_query("SELECT range AS i FROM range(25) ORDER BY i DESC", row_limit=10)
    assert cut.truncated and cut.frame["i"].to_list() == list(range(24, 14, -1))
    whole = seeded.store.notebook_query("SELECT range AS i FROM range(25)", row_limit=25)
    assert not whole.truncated and whole.frame.height == 25
    plan = seeded.store.notebook_query("EXPLAIN SELECT * FROM events", row_limit=10)
    assert plan.frame.height >= 1 and not plan.truncated


def test_times_come_back_as_aware_utc_like_every_store_read(seeded: Seeded):
    kickoff = seeded.store.notebook_query("SELECT kickoff FROM events LIMIT 1").frame.schema["kickoff"]
    assert kickoff == pl.Datetime("us", "UTC")


def test_the_history_archive_is_readable_as_a_view_when_present(tmp_path: Path):
    store = Store(tmp_path / "oddsdesk.duckdb")
    with pytest.raises(duckdb.CatalogException, match="odds_history_archive"):
        store.notebook_query("SELECT * FROM odds_history_archive")
    folder = archive_dir(store.path)
    for day, odds in ((date(2030, 1, 1), [1.5, 2.5]), (date(2030, 1, 2), [3.25])):
        part = folder / f"date={day}"
        part.mkdir(parents=True)
        pl.DataFrame({"sr_id": ["1"] * len(odds), "odds": odds}).write_parquet(part / "history.parquet")
    rows = store.notebook_query("SELECT date, sum(odds) AS odds FROM odds_history_archive GROUP BY date ORDER BY date")
    assert rows.frame.rows() == [(date(2030, 1, 1), 4.0), (date(2030, 1, 2), 3.25)]
    with pytest.raises(NotebookRefusal):
        store.notebook_query(f"COPY (SELECT 1) TO '{folder}/planted.csv'")
    error = refused_by_connection(store, f"SELECT * FROM read_text('{folder}/../../../etc/passwd')")
    assert isinstance(error, duckdb.PermissionException)
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["history.parquet", "history.parquet"]
