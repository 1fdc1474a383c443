"""Shared fixtures: a real simulator process on loopback and settings pointing at it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.config import BOOKS, Settings, load_settings  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"


def sim_settings(sim, db_path: Path, **overrides) -> Settings:
    """Settings that talk to the simulator, with test-sized timeouts and backoff."""
    values = {f"{b}_url": sim.urls[b] for b in BOOKS}
    values.update(db_path=db_path, request_timeout_s=3.0, backoff_s=0.05, bet9ja_delay_ms=0)
    values.update(overrides)
    return load_settings(**values)


def sim_env(sim, db_path: Path, **extra: str) -> dict[str, str]:
    """Environment for a child process (scheduler, CLI, app) pointed at the simulator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    env.update({f"ODDSDESK_{b.upper()}_URL": sim.urls[b] for b in BOOKS})
    env.update(ODDSDESK_DB_PATH=str(db_path), ODDSDESK_REQUEST_TIMEOUT_S="3", ODDSDESK_BACKOFF_S="0.05",
               ODDSDESK_BET9JA_DELAY_MS="0", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def world_of(sim):
    """The simulator's world rebuilt in this process: the ground truth for assertions."""
    from engine.simulator.world import build_world

    st = sim.state()
    return build_world(seed=st["seed"], events=st["events"], anchor=datetime.fromisoformat(st["anchor"]))


@pytest.fixture(scope="session")
def sim() -> Iterator[object]:
    """A clean simulator (no faults) shared by read-only integration tests: 60 events."""
    from engine.simulator.process import start_simulator

    with start_simulator(seed=7, events=60) as proc:
        yield proc


@pytest.fixture()
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- the store's two backends: the same tests on a DuckDB file and on a PostgreSQL server ------

@dataclass(frozen=True)
class StoreTarget:
    """Where a test's store lives: a DuckDB file, or a fresh database on the test PostgreSQL
    server (``database_url``; ``db_path`` then only anchors local side files)."""

    db_path: Path
    database_url: str | None = None

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "duckdb"

    def store(self):
        from engine.store import Store

        return Store(self.database_url, local_dir=self.db_path.parent) if self.database_url else Store(self.db_path)

    def settings(self) -> dict:
        """Settings values naming this store (for ``sim_settings``/``load_settings``)."""
        return {"db_path": self.db_path, "database_url": self.database_url}

    def execute(self, sql: str, params: list | None = None) -> None:
        """A write behind the store's back (``?`` parameters, SQL both backends accept), e.g. to age
        rows the API only ever writes with the current time."""
        if self.database_url:
            import psycopg

            from engine.store.pg import translate

            with psycopg.connect(self.database_url.replace("+psycopg", "")) as conn:
                conn.execute(translate(sql) if params else sql, params)  # type: ignore[arg-type]
        else:
            import duckdb

            with duckdb.connect(str(self.db_path)) as con:
                con.execute(sql, params or [])

    def env(self) -> dict[str, str]:
        """Environment naming this store, for a child process."""
        env = {"ODDSDESK_DB_PATH": str(self.db_path)}
        if self.database_url:
            env["ODDSDESK_DATABASE_URL"] = self.database_url
        return env


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """One PostgreSQL server for the session (Debian's postgresql; scripts/test.sh installs it)."""
    from tests.pg_server import start_postgres

    try:
        server = start_postgres()
        url = server.__enter__()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_target(request, tmp_path: Path) -> Iterator[StoreTarget]:
    """Each test using it runs twice: on a DuckDB file and on PostgreSQL."""
    db_path = tmp_path / "odds.duckdb"
    if request.param == "duckdb":
        yield StoreTarget(db_path)
        return
    from tests.pg_server import drop_database, fresh_database

    admin = request.getfixturevalue("pg_admin_url")
    target = StoreTarget(db_path, fresh_database(admin))
    yield target
    drop_database(admin, target.database_url)
