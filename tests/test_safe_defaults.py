"""Safe defaults, as a user starts the product: the app listens on localhost only, logs carry
neither payloads nor credentials.

The third default — a second ``oddsdesk scheduler`` on the same database refuses to start with
a clear message — is tested where the scheduler process is:
``tests/test_scheduler_process.py::test_second_scheduler_on_the_same_database_is_refused``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.bookmakers import bet9ja, sportybet
from engine.bookmakers._models import Tournament
from engine.cli import app_command
from engine.config import BOOKS, load_settings
from engine.simulator.process import start_simulator
from engine.store import Store
from tests.conftest import ROOT, sim_env

pytestmark = pytest.mark.integration

LINE_LIMIT = 1_000
SECRET = "s3cr3t-Pa55"
#: Text of the simulator's broken bodies and of the books' JSON: none of it belongs in a log.
PAYLOAD_MARKERS = ("<html", "<!DOCTYPE", "blocked", "Ray ID", "upstream error", '"marketType"', '"outcomes"',
                   '"bizCode"', '"PAL"', '"prices"', '"markets"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port: int) -> set[str]:
    """Local addresses (hex, as the kernel lists them) listening on ``port``, IPv4 and IPv6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hexport = local.rpartition(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(address)
    return found


def test_the_app_listens_on_localhost_only_by_default(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ODDSDESK_")}
    env.update(ODDSDESK_DB_PATH=str(tmp_path / "odds.duckdb"), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "app", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not listeners(port):
            assert proc.poll() is None, f"oddsdesk app exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the app never listened"
            time.sleep(0.3)
        assert listeners(port) == {"0100007F"}  # 127.0.0.1, and no 0.0.0.0 / :: listener
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the session we started: `oddsdesk app` and its streamlit
        proc.wait(30)


def test_the_address_comes_from_the_setting_and_defaults_to_localhost(monkeypatch):
    monkeypatch.delenv("ODDSDESK_APP_ADDRESS", raising=False)
    command = app_command(load_settings())
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    monkeypatch.setenv("ODDSDESK_APP_ADDRESS", "0.0.0.0")
    command = app_command(load_settings())
    assert command[command.index("--server.address") + 1] == "0.0.0.0"


def test_scheduler_logs_of_a_cycle_with_broken_payloads_hold_no_payload_or_credential(tmp_path):
    faults = "all:malformed=0.25,truncated=0.2,500=0.05,scope=detail"
    with start_simulator(seed=9, events=25, faults=faults) as sim:
        db = tmp_path / "odds.duckdb"
        log_path = tmp_path / "scheduler.log"
        env = sim_env(sim, db, ODDSDESK_SCRAPE_INTERVAL_MIN="60", ODDSDESK_ATTEMPTS="2")
        for book in BOOKS:  # credentials in the base URLs, as a proxy or a partner feed might need
            env[f"ODDSDESK_{book.upper()}_URL"] = sim.urls[book].replace("http://", f"http://desk:{SECRET}@")
        store = Store(db)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=env, cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not (store.runs().height and store.runs()["status"][0] != "RUNNING"):
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        run = store.runs()[0].row(0, named=True)
    text = log_path.read_text()
    assert run["status"] == "PARTIAL" and "malformed" in text, text[-3000:]  # the faults did reach the parsers
    assert SECRET not in text
    for line in text.splitlines():
        assert len(line) <= LINE_LIMIT, line[:300]
        assert not any(marker in line for marker in PAYLOAD_MARKERS), line


def test_parser_warnings_quote_hostile_payloads_briefly(caplog):
    huge = "Z" * 200_000
    deep: object = "x"
    for _ in range(990):
        deep = [deep]
    tournament = Tournament("bet9ja", "990011", "Premier League", "Atlantis")
    bet9ja_list = {"R": "OK", "D": {"E": [{"ID": 1, "DS": huge, "STARTDATE": "2030-01-01 12:00:00", "EXTID": "5"},
                                          {"ID": deep, "DS": "A - B", "STARTDATE": deep}]}}
    bet9ja_tree = {"R": "OK", "D": {"PAL": {"1": {"SG": {huge: {"G": deep}}}}}}
    sportybet_tree = {"bizCode": 10000, "data": {"sportList": [{"id": "sr:sport:1", "categories": [
        {"name": huge, "tournaments": deep}, {"tournaments": [{"id": huge}, deep]}]}]}}
    with caplog.at_level(logging.DEBUG):
        assert bet9ja.parse_event_list(bet9ja_list, tournament, datetime(2000, 1, 1, tzinfo=UTC)) == []
        assert bet9ja.parse_tree(bet9ja_tree) == []
        assert sportybet.parse_tree(sportybet_tree) == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) >= 4
    assert all(len(m) <= LINE_LIMIT and "Z" * 100 not in m for m in messages), [m[:200] for m in messages]
