"""The SQL notebook's connection refuses, by itself, everything but reading the store.

Each check runs a hostile statement through ``Store.notebook_query`` (what the page calls) and
asserts the database's refusal and that nothing changed; where a statement is refused before it
runs, the same statement is also run on the bare notebook connection to show the connection
would refuse it anyway. Every store-level attack runs on both backends; DuckDB's own (ATTACH,
its file functions, its configuration) and PostgreSQL's own (roles, server files, programs,
other sessions) run on theirs. The test server's app role is a superuser, the case where the
notebook's separate login matters.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import psycopg
import pytest
from app_fixtures import Seeded, seeded  # noqa: F401  (fixture)

from engine.store import Store, notebook
from engine.store.archive import archive_dir
from engine.store.notebook import NotebookRefusal, NotebookTimeout

RUNAWAY = {
    "duckdb": "SELECT a.range * b.range AS x FROM range(100000) a, range(100000) b ORDER BY x DESC",
    "postgres": "SELECT a.i * b.i AS x FROM generate_series(1, 100000) a(i), generate_series(1, 100000) b(i) "
                "ORDER BY x DESC",
}
#: 0..24 as column ``i``, per backend.
SERIES = {"duckdb": "SELECT range AS i FROM range(25)", "postgres": "SELECT i FROM generate_series(0, 24) AS s(i)"}


def fingerprint(store: Store) -> tuple:
    """Row counts and a checksum of the prices: what any write would change."""
    prices = store.query("SELECT count(*), sum(odds), max(last_seen_at) FROM odds_current").row(0)
    return tuple(sorted(store.table_counts().items())), prices


def refused_by_connection(store: Store, sql: str) -> Exception:
    with pytest.raises(psycopg.Error if store.postgres else duckdb.Error) as caught:
        store.notebook_query(sql)
    return caught.value


def only(backend: str, seeded: Seeded) -> None:
    if seeded.target.backend != backend:
        pytest.skip(f"{backend} only")


def denied(store: Store, sql: str) -> psycopg.Error:
    """PostgreSQL refused the notebook role a privilege."""
    error = refused_by_connection(store, sql)
    assert isinstance(error, psycopg.errors.InsufficientPrivilege), error
    return error  # type: ignore[return-value]


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
    only("duckdb", seeded)
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as conn:
        conn.execute("CREATE TABLE secrets AS SELECT 'hunter2' AS password")
    error = refused_by_connection(seeded.store, f"ATTACH '{other}' AS o")
    assert isinstance(error, duckdb.PermissionException)
    fresh = tmp_path / "fresh.duckdb"
    refused_by_connection(seeded.store, f"ATTACH '{fresh}' AS f")
    assert not fresh.exists()


def test_copy_to_a_file_is_refused_and_no_file_appears(seeded: Seeded, tmp_path: Path):
    only("duckdb", seeded)
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
    only("duckdb", seeded)
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
    only("duckdb", seeded)
    error = refused_by_connection(seeded.store, sql)
    assert "configuration has been locked" in str(error)
    refused_by_connection(seeded.store, "SELECT * FROM read_csv('/etc/passwd')")


def test_only_one_statement_runs(seeded: Seeded):
    with pytest.raises(NotebookRefusal, match="one statement at a time"):
        seeded.store.notebook_query("SELECT 1; SELECT 2")
    assert seeded.store.notebook_query("SELECT 42 AS answer;").frame["answer"].to_list() == [42]


def test_a_runaway_query_is_stopped_and_the_store_stays_usable(seeded: Seeded):
    with pytest.raises(NotebookTimeout, match=r"^stopped after 1 s"):
        seeded.store.notebook_query(RUNAWAY[seeded.target.backend], timeout_s=1.0)
    seeded.store.put_settings({"notebook_probe": 1})  # the shared lock was released: a writer gets in
    assert seeded.store.get_settings()["notebook_probe"] == 1
    events = seeded.store.notebook_query("SELECT count(*) AS n FROM events").frame["n"][0]
    assert events == seeded.store.events().height


def test_results_are_cut_at_the_row_limit_and_say_so(seeded: Seeded):
    series = SERIES[seeded.target.backend]
    cut = seeded.store.notebook_query(f"{series} ORDER BY i DESC", row_limit=10)
    assert cut.truncated and cut.frame["i"].to_list() == list(range(24, 14, -1))
    whole = seeded.store.notebook_query(series, row_limit=25)
    assert not whole.truncated and whole.frame.height == 25
    plan = seeded.store.notebook_query("EXPLAIN SELECT * FROM events", row_limit=10)
    assert plan.frame.height >= 1 and not plan.truncated


def test_times_come_back_as_aware_utc_like_every_store_read(seeded: Seeded):
    kickoff = seeded.store.notebook_query("SELECT kickoff FROM events LIMIT 1").frame.schema["kickoff"]
    assert kickoff == pl.Datetime("us", "UTC")


def test_an_empty_result_keeps_its_columns(seeded: Seeded):
    empty = seeded.store.notebook_query("SELECT sr_id, kickoff FROM events WHERE sr_id = 'none'").frame
    assert empty.is_empty() and empty.schema == pl.Schema({"sr_id": pl.String, "kickoff": pl.Datetime("us", "UTC")})


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


# --- PostgreSQL: the notebook logs in as its own role, whatever the app's role may do -----------


def test_the_notebook_logs_in_as_a_role_without_privileges_though_the_app_is_a_superuser(seeded: Seeded):
    only("postgres", seeded)
    assert seeded.store.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")["rolsuper"][0]
    who = seeded.store.notebook_query("SELECT current_user AS cur, session_user AS ses").frame.row(0)
    role = notebook.notebook_role(seeded.store.query("SELECT current_database() AS d")["d"][0])
    assert who == (role, role)
    attributes = seeded.store.query(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = ?",
        [role]).row(0)
    assert attributes == (False,) * 5
    assert seeded.store.query("SELECT count(*) AS n FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
                              "WHERE r.rolname = ?", [role])["n"][0] == 0, "member of no role"


@pytest.mark.parametrize("sql", [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('/etc')",
    "SELECT pg_stat_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "COPY events FROM '/etc/passwd'",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "SELECT * FROM store_state",  # the notebook's own password is there
])
def test_server_files_programs_and_the_stores_bookkeeping_are_refused(seeded: Seeded, sql: str):
    only("postgres", seeded)
    error = denied(seeded.store, sql)
    assert "root:" not in str(error)


def test_copy_to_a_server_file_or_program_is_refused_and_nothing_appears(seeded: Seeded, tmp_path: Path):
    only("postgres", seeded)
    target = tmp_path / "leak.csv"
    denied(seeded.store, f"COPY events TO '{target}'")
    denied(seeded.store, f"COPY (SELECT 1) TO PROGRAM 'touch {target}'")
    assert not target.exists()


@pytest.mark.parametrize("sql", [
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    # A superuser *session* could do these and then run any SQL as the superuser within the same
    # statement (query_to_xml plans its text at run time): the reason the notebook logs in apart.
    "SELECT set_config('role', 'postgres', true), "
    "query_to_xml('SELECT pg_read_file(''/etc/passwd'') AS x', true, false, '')",
    "SELECT set_config('session_authorization', 'postgres', true), "
    "query_to_xml('SELECT pg_read_file(''/etc/passwd'') AS x', true, false, '')",
])
def test_the_role_cannot_be_changed(seeded: Seeded, sql: str):
    only("postgres", seeded)
    error = denied(seeded.store, sql)
    assert "root:" not in str(error)


def test_reset_role_leaves_the_notebook_role_and_read_only_cannot_be_turned_off(seeded: Seeded):
    only("postgres", seeded)
    assert seeded.store.notebook_query("RESET ROLE").frame.is_empty()
    role = seeded.store.notebook_query("SELECT current_user AS u").frame["u"][0]
    assert role.endswith("_notebook")
    before = fingerprint(seeded.store)
    with pytest.raises(psycopg.errors.ActiveSqlTransaction):
        seeded.store.notebook_query("SELECT set_config('transaction_read_only', 'off', true)")
    error = refused_by_connection(seeded.store, "WITH d AS (DELETE FROM events RETURNING 1) SELECT count(*) FROM d")
    assert "read-only" in str(error)
    assert fingerprint(seeded.store) == before


def test_other_sessions_cannot_be_stopped(seeded: Seeded):
    only("postgres", seeded)
    with psycopg.connect(seeded.target.database_url.replace("+psycopg", "")) as app_session:  # type: ignore[union-attr]
        pid = app_session.info.backend_pid
        denied(seeded.store, f"SELECT pg_terminate_backend({pid})")
        denied(seeded.store, f"SELECT pg_cancel_backend({pid})")
        assert app_session.execute("SELECT 1").fetchone() == (1,)


def test_turning_the_timeout_off_inside_the_statement_does_not_stop_it(seeded: Seeded):
    only("postgres", seeded)
    with pytest.raises(NotebookTimeout):
        seeded.store.notebook_query("SELECT set_config('statement_timeout', '0', true), pg_sleep(30)", timeout_s=1.0)


def test_a_session_advisory_lock_ends_with_the_statement(seeded: Seeded):
    """The writer's lock taken at session level would outlive a pooled connection's transaction:
    the notebook's connection is closed after each statement, so a write still gets in."""
    only("postgres", seeded)
    from engine.store.db import PG_WRITER_LOCK

    seeded.store.notebook_query(f"SELECT pg_advisory_lock({PG_WRITER_LOCK})")
    seeded.store.put_settings({"notebook_probe": 2})
    assert seeded.store.get_settings()["notebook_probe"] == 2


@pytest.mark.postgres
def test_an_app_role_that_may_not_make_roles_gets_the_steps_to_take(pg_admin_url: str, tmp_path: Path):
    """Without CREATEROLE the notebook cannot get its own login: it refuses, saying what an
    administrator should run, rather than fall back to the app's own session."""
    import uuid

    from tests.pg_server import fresh_database

    role = f"app_{uuid.uuid4().hex[:8]}"
    url = fresh_database(pg_admin_url)
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")  # type: ignore[arg-type]
        admin.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')  # type: ignore[arg-type]
    store = Store(url.replace("postgres@", f"{role}@"), local_dir=tmp_path)
    with pytest.raises(NotebookRefusal, match=rf"CREATE ROLE {database}_notebook LOGIN"):
        store.notebook_query("SELECT count(*) FROM events")
    assert store.query("SELECT count(*) AS n FROM store_state WHERE key = ?", [notebook.LOGIN_KEY])["n"][0] == 0
