"""The `oddsdesk` command as a user runs it: scrape once, export the comparison, bad settings."""

from __future__ import annotations

import socket
import subprocess
import sys

import polars as pl
import pytest

from engine.pipeline.export import EXPORT_COLUMNS
from engine.store import Store
from tests.conftest import ROOT, sim_env

pytestmark = pytest.mark.integration


def oddsdesk(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_scrape_once_prints_a_summary_and_export_matches_the_store(sim, tmp_path):
    db = tmp_path / "odds.duckdb"
    env = sim_env(sim, db)
    res = oddsdesk("scrape", "--once", env=env)
    assert res.returncode == 0, res.stderr
    assert "COMPLETED" in res.stdout and "betpawa" in res.stdout and "bet9ja" in res.stdout

    csv_path = tmp_path / "out" / "comparison.csv"
    res = oddsdesk("export", "comparison", "--format", "csv", "--out", str(csv_path), env=env)
    assert res.returncode == 0, res.stderr
    frame = pl.read_csv(csv_path, infer_schema_length=None)
    assert frame.columns == EXPORT_COLUMNS
    store = Store(db)
    available = store.current_prices(available_only=True)
    assert frame.height == available.height
    # 1X2 rows carry a margin; a known price equals the store's.
    row = available.filter(pl.col("market") == "1x2_ft").row(0, named=True)
    hit = frame.filter((pl.col("sportradar_id").cast(pl.String) == row["sr_id"]) & (pl.col("market") == "1x2_ft")
                       & (pl.col("bookmaker") == row["bookmaker"]) & (pl.col("outcome") == row["outcome"]))
    assert hit.height == 1 and hit["odds"][0] == pytest.approx(row["odds"])
    assert hit["margin_pct"][0] > 0 and hit["fair_odds"][0] > row["odds"]
    assert frame.filter(pl.col("market") == "1x2_ft")["line"].null_count() == frame.filter(pl.col("market") == "1x2_ft").height

    pq = tmp_path / "comparison.parquet"
    assert oddsdesk("export", "comparison", "--format", "parquet", "--out", str(pq), env=env).returncode == 0
    assert pl.read_parquet(pq).height == frame.height


def test_scrape_once_exits_1_when_no_book_is_reachable(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "ODDSDESK_DB_PATH": str(tmp_path / "x.duckdb"),
           "ODDSDESK_BETPAWA_URL": "http://127.0.0.1:9", "ODDSDESK_SPORTYBET_URL": "http://127.0.0.1:9",
           "ODDSDESK_BET9JA_URL": "http://127.0.0.1:9", "ODDSDESK_ATTEMPTS": "1", "PATH": "/usr/bin:/bin"}
    res = oddsdesk("scrape", "--once", env=env)
    assert res.returncode == 1
    assert "CONNECTION_FAILED" in res.stdout
    assert Store(tmp_path / "x.duckdb").runs()["status"][0] == "CONNECTION_FAILED"


def test_a_bad_setting_stops_the_start_naming_the_variable(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "ODDSDESK_DB_PATH": str(tmp_path / "x.duckdb"),
           "ODDSDESK_BET9JA_CONCURRENCY": "lots", "PATH": "/usr/bin:/bin"}
    res = oddsdesk("scrape", "--once", env=env)
    assert res.returncode == 2
    assert "ODDSDESK_BET9JA_CONCURRENCY" in res.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [("scheduler",), ("scrape", "--once")])
def test_an_unreachable_database_server_is_one_clear_line(tmp_path, command):
    url = f"postgresql+psycopg://desk:s3cret@127.0.0.1:{closed_port()}/odds"
    env = {"PYTHONPATH": str(ROOT), "ODDSDESK_DATABASE_URL": url, "PATH": "/usr/bin:/bin",
           "ODDSDESK_DB_PATH": str(tmp_path / "x.duckdb")}
    res = oddsdesk(*command, env=env)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and line.startswith("oddsdesk: cannot reach the database at postgresql+psycopg://desk:***@")
    assert "s3cret" not in res.stderr + res.stdout and "refused" in line.lower()
