"""`oddsdesk scheduler` as users start it: kill -9 recovery, cross-process run requests, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from engine.simulator.process import start_simulator
from engine.store import Store
from tests.conftest import ROOT, sim_env

pytestmark = pytest.mark.integration


def start_scheduler(env: dict[str, str], log_path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "scheduler"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log_path=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"scheduler exited ({proc.returncode}) while waiting for {what}:\n"
                                 + (log_path.read_text() if log_path else ""))
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{log_path.read_text()[-3000:]}" if log_path else ""))


def children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def gone(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def runs(store: Store):
    return list(store.runs(limit=20).iter_rows(named=True))


def test_sigkill_mid_cycle_then_restart_recovers_and_loses_nothing(tmp_path, store_target):
    with start_simulator(seed=21, events=200, faults="all:latency=40,jitter=10") as sim:
        log_path = tmp_path / "scheduler.log"
        env = sim_env(sim, store_target.db_path, ODDSDESK_BATCH_SIZE="10", ODDSDESK_BETPAWA_CONCURRENCY="4",
                      ODDSDESK_SPORTYBET_CONCURRENCY="4", ODDSDESK_BET9JA_CONCURRENCY="4",
                      ODDSDESK_SCRAPE_INTERVAL_MIN="60", **store_target.env())
        store = store_target.store()
        proc = start_scheduler(env, log_path)
        try:
            def mid_cycle():
                r = runs(store)
                if not r or r[0]["status"] != "RUNNING":
                    return None
                progress = store.run_progress(r[0]["id"])
                done = progress.filter(progress["kind"] == "BATCH_COMPLETE")
                return r[0]["id"] if done.height >= 2 else None

            killed_run = wait_for(mid_cycle, 90, "two committed batches", proc, log_path)
            committed = store.table_counts()["odds_current"]
            workers = children(proc.pid)  # the payload decode worker(s)
            assert workers
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            # Nothing the killed scheduler started may live on as an orphan.
            wait_for(lambda: all(gone(w) for w in workers), 15, "the decode workers to exit")
        finally:
            if proc.poll() is None:
                proc.kill()
        assert committed > 0
        # The killed process's run is still RUNNING on disk until a scheduler starts again.
        assert store.run(killed_run)["status"] == "RUNNING"
        assert store.table_counts()["odds_current"] >= committed

        proc = start_scheduler(env, log_path)
        try:
            wait_for(lambda: store.run(killed_run)["status"] == "FAILED", 30, "recovery", proc, log_path)
            assert "interrupted" in (store.run(killed_run)["error"] or "")
            assert store.table_counts()["odds_current"] >= committed
            wait_for(lambda: any(r["id"] > killed_run and r["status"] == "COMPLETED" for r in runs(store)),
                     180, "the next cycle to complete", proc, log_path)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        assert proc.returncode == 0


def test_run_request_from_another_process_is_picked_up(tmp_path, store_target):
    with start_simulator(seed=4, events=15) as sim:
        log_path = tmp_path / "scheduler.log"
        env = sim_env(sim, store_target.db_path, ODDSDESK_SCRAPE_INTERVAL_MIN="60", **store_target.env())
        store = store_target.store()
        proc = start_scheduler(env, log_path)
        try:
            first = wait_for(lambda: [r for r in runs(store) if r["status"] != "RUNNING"], 60,
                             "the first scheduled cycle", proc, log_path)[0]
            assert first["status"] == "COMPLETED"
            # The app is another process: write the request through our own Store from here.
            req = store.add_run_request("scrape_now")
            done = wait_for(lambda: [r for r in store.run_requests().iter_rows(named=True)
                                     if r["id"] == req and r["status"] in ("DONE", "FAILED")], 60,
                            "the request to be executed", proc, log_path)[0]
            assert done["status"] == "DONE" and done["run_id"] and done["run_id"] != first["id"]
            assert store.run(done["run_id"])["trigger"] == "request"
            sr_id = store.events()["sr_id"][0]
            req2 = store.add_run_request("refresh_event", {"sr_id": sr_id})
            done2 = wait_for(lambda: [r for r in store.run_requests().iter_rows(named=True)
                                      if r["id"] == req2 and r["status"] in ("DONE", "FAILED")], 60,
                             "the refresh to be executed", proc, log_path)[0]
            assert done2["status"] == "DONE"
            assert store.run(done2["run_id"])["events_total"] == 1
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


def test_second_scheduler_on_the_same_database_is_refused(tmp_path, store_target):
    with start_simulator(seed=4, events=5) as sim:
        env = sim_env(sim, store_target.db_path, ODDSDESK_SCRAPE_INTERVAL_MIN="60", **store_target.env())
        first = start_scheduler(env, tmp_path / "a.log")
        try:
            wait_for(lambda: store_target.store().runs().height > 0, 60, "the first scheduler", first,
                     tmp_path / "a.log")
            second = subprocess.run([sys.executable, "-m", "engine.cli", "scheduler"], env=env, cwd=ROOT,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 1
            assert "already running" in second.stderr
            assert f"pid {first.pid}" in second.stderr  # names the scheduler that holds the store
        finally:
            first.send_signal(signal.SIGTERM)
            first.wait(60)
