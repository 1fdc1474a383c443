"""SQL notebook: read-only SQL over the store; writes are refused and change nothing. On both
backends: each speaks its own dialect, so the file and runaway attacks are written in each."""

from __future__ import annotations

from app_fixtures import Seeded, open_page, seeded  # noqa: F401  (fixture)

from engine.store import views

PAGE = "pages/sql.py"
#: A statement that would run for hours, per backend.
RUNAWAY = {
    "duckdb": "SELECT a.range * b.range AS x FROM range(100000) a, range(100000) b ORDER BY x DESC",
    "postgres": "SELECT a.i * b.i AS x FROM generate_series(1, 100000) a(i), generate_series(1, 100000) b(i) "
                "ORDER BY x DESC",
}
#: Reading a file of the machine the database runs on, per backend.
READ_FILE = {"duckdb": "SELECT * FROM read_csv('/etc/passwd')", "postgres": "SELECT pg_read_file('/etc/passwd')"}


def run_sql(at, sql: str):
    at.text_area(key="sql_text").set_value(sql)
    at.form_submit_button[0].click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_select_returns_the_rows_as_a_grid_with_downloads(seeded: Seeded, monkeypatch):
    at = run_sql(open_page(seeded.target, monkeypatch, PAGE),
                 "SELECT sr_id, home, away FROM events ORDER BY kickoff, sr_id")
    result = at.dataframe[0].value
    expected = seeded.store.events().sort("kickoff", "sr_id")
    assert list(result["sr_id"]) == expected["sr_id"].to_list()
    assert [b.label for b in at.download_button] == ["Download CSV", "Download Parquet"]
    assert not at.error


def test_write_statements_are_refused_and_change_nothing(seeded: Seeded, monkeypatch):
    before = seeded.store.table_counts()
    at = open_page(seeded.target, monkeypatch, PAGE)
    for sql in ("DELETE FROM events", "UPDATE odds_current SET odds = 1.01", "DROP TABLE scrape_runs",
                "INSERT INTO settings VALUES ('x', '1', now())", "CREATE TABLE t AS SELECT 1"):
        run_sql(at, sql)
        assert at.error and at.error[0].value.startswith("read-only:"), sql
        assert not at.dataframe
    assert seeded.store.table_counts() == before


def test_copy_to_a_file_is_refused(seeded: Seeded, monkeypatch, tmp_path):
    target = tmp_path / "leak.csv"
    at = run_sql(open_page(seeded.target, monkeypatch, PAGE), f"COPY events TO '{target}'")
    refusal = "refused: COPY" if seeded.target.backend == "duckdb" else "refused: the notebook cannot touch files"
    assert at.error[0].value.startswith(refusal)  # DuckDB: before it runs; PostgreSQL: by privilege
    assert not target.exists()


def test_reading_a_file_outside_the_store_is_refused(seeded: Seeded, monkeypatch):
    at = run_sql(open_page(seeded.target, monkeypatch, PAGE), READ_FILE[seeded.target.backend])
    assert at.error[0].value.startswith("refused: the notebook cannot touch files")
    assert not at.dataframe


def test_a_runaway_query_is_stopped_and_the_page_stays_usable(seeded: Seeded, monkeypatch):
    monkeypatch.setattr(views, "SQL_TIMEOUT_S", 1.0)
    at = run_sql(open_page(seeded.target, monkeypatch, PAGE), RUNAWAY[seeded.target.backend])
    assert at.error[0].value.startswith("stopped after 1 s")
    run_sql(at, "SELECT count(*) AS n FROM events")
    assert not at.error
    assert at.dataframe[0].value["n"][0] == seeded.store.events().height


def test_a_syntax_error_is_shown_as_such(seeded: Seeded, monkeypatch):
    at = run_sql(open_page(seeded.target, monkeypatch, PAGE), "SELEC 1")
    assert at.error[0].value.startswith("SQL error:")


def test_example_queries_load_and_run(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    at.selectbox(key="sql_example").set_value("Prices per book").run()
    assert at.text_area(key="sql_text").value == views.EXAMPLE_QUERIES["Prices per book"]
    at.form_submit_button[0].click().run()
    result = at.dataframe[0].value
    counts = seeded.store.query("SELECT bookmaker, count(*) AS n FROM odds_current GROUP BY bookmaker")
    assert dict(zip(result["bookmaker"], result["prices"])) == dict(counts.iter_rows())


def test_every_example_query_runs(seeded: Seeded):
    for name, sql in views.EXAMPLE_QUERIES.items():
        assert views.run_sql(seeded.store, sql).frame.width >= 1, name
