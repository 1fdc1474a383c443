"""Run lifecycle, watchdog and start-up recovery, progress, settings and the run-request queue
the app and the scheduler share."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from engine.store import Store


@pytest.fixture
def store(store_target) -> Store:
    return store_target.store()


def test_a_run_goes_from_running_to_finished_with_its_summary(store):
    run_id = store.start_run("scheduled", ["betpawa", "sportybet", "bet9ja"])
    started = store.run(run_id)
    assert started["status"] == "RUNNING" and started["books"] == ["betpawa", "sportybet", "bet9ja"]
    assert started["started_at"].tzinfo is not None and started["finished_at"] is None

    store.update_run(run_id, events_total=120, discovery={"betpawa": {"events": 120}})
    store.finish_run(run_id, "PARTIAL", {"events_scraped": 118, "events_failed": 2, "books": {"bet9ja": {"failed": 2}}},
                     error="2 events failed on bet9ja")

    run = store.run(run_id)
    assert (run["status"], run["events_total"], run["events_scraped"], run["events_failed"]) == ("PARTIAL", 120, 118, 2)
    assert run["discovery"] == {"betpawa": {"events": 120}}
    assert run["summary"]["books"]["bet9ja"]["failed"] == 2 and run["error"] == "2 events failed on bet9ja"
    assert run["finished_at"] >= run["started_at"]
    assert store.runs()["id"].to_list() == [run_id]


def test_bad_run_fields_are_refused(store):
    run_id = store.start_run("cli", ["betpawa"])
    with pytest.raises(ValueError, match="not a scrape_runs column"):
        store.update_run(run_id, colour="red")
    with pytest.raises(ValueError, match="cannot finish"):
        store.finish_run(run_id, "RUNNING", {})
    assert store.run(999) is None


def test_progress_events_come_back_in_order(store):
    run_id = store.start_run("cli", ["betpawa"])
    store.add_progress(run_id, "CYCLE_START", "full run started")
    store.add_progress(run_id, "DISCOVERY_COMPLETE", "40 events", {"matched": 40})
    store.add_progress(run_id, "BATCH_START", "batch 1/1", None, 0, 1)

    progress = store.run_progress(run_id)
    assert progress["seq"].to_list() == [1, 2, 3]
    assert progress["kind"].to_list() == ["CYCLE_START", "DISCOVERY_COMPLETE", "BATCH_START"]
    assert progress["data"][1] == '{"matched": 40}' and progress["batches_total"][2] == 1
    assert store.run_progress(run_id + 1).height == 0


def test_watchdog_fails_only_runs_whose_heartbeat_stopped(store):
    stuck = store.start_run("scheduled", ["betpawa"])
    alive = store.start_run("scheduled", ["betpawa"])
    done = store.start_run("scheduled", ["betpawa"])
    long_ago = datetime.now(UTC) - timedelta(minutes=30)
    store.update_run(stuck, heartbeat_at=long_ago)
    store.update_run(done, heartbeat_at=long_ago)
    store.finish_run(done, "COMPLETED", {})
    store.update_run(done, heartbeat_at=long_ago)

    assert store.fail_stale_runs(300, "no heartbeat for 300s") == [stuck]
    assert store.run(stuck)["status"] == "FAILED" and store.run(stuck)["error"] == "no heartbeat for 300s"
    assert store.run(alive)["status"] == "RUNNING" and store.run(done)["status"] == "COMPLETED"
    store.heartbeat(alive)
    assert store.fail_stale_runs(300, "again") == []


def test_start_up_recovery_fails_everything_left_running(store):
    left = [store.start_run("scheduled", ["betpawa"]) for _ in range(2)]
    finished = store.start_run("cli", ["betpawa"])
    store.finish_run(finished, "COMPLETED", {})

    assert store.fail_running_runs("scheduler restarted") == left
    assert [store.run(i)["status"] for i in left] == ["FAILED", "FAILED"]
    assert store.run(finished)["status"] == "COMPLETED"


def test_settings_round_trip_as_json_values(store):
    assert store.get_settings() == {}
    store.put_settings({"scrape_interval_min": 5, "scheduler_status": {"pid": 12, "next_run_at": None}})
    store.put_settings({"scrape_interval_min": 2.5})

    assert store.get_settings() == {"scrape_interval_min": 2.5, "scheduler_status": {"pid": 12, "next_run_at": None}}


def test_run_requests_are_claimed_oldest_first_and_finished(store):
    first = store.add_run_request("run_now")
    second = store.add_run_request("refresh_event", {"sr_id": "61300001"})

    claimed = store.claim_run_requests()
    assert [r["id"] for r in claimed] == [first, second]
    assert claimed[1]["payload"] == {"sr_id": "61300001"} and claimed[1]["status"] == "CLAIMED"
    assert store.claim_run_requests() == []

    run_id = store.start_run("request", ["betpawa"])
    store.finish_run_request(first, "DONE", "run started", run_id)
    store.finish_run_request(second, "FAILED", "event unknown")
    rows = {r["id"]: r for r in store.run_requests().iter_rows(named=True)}
    assert (rows[first]["status"], rows[first]["run_id"]) == ("DONE", run_id)
    assert (rows[second]["status"], rows[second]["message"]) == ("FAILED", "event unknown")
    with pytest.raises(ValueError):
        store.finish_run_request(first, "PENDING")


def test_each_request_is_handed_out_once_when_pollers_race(store):
    ids: list[int] = []
    claimed: list[int] = []
    errors: list[BaseException] = []
    producing = threading.Event()
    producing.set()

    def produce() -> None:
        for n in range(12):
            ids.append(Store(store.path).add_run_request("run_now", {"n": n}))
        producing.clear()

    def poll() -> None:
        try:
            mine = Store(store.path)
            while producing.is_set():
                claimed.extend(r["id"] for r in mine.claim_run_requests())
                time.sleep(0.005)
            claimed.extend(r["id"] for r in mine.claim_run_requests())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=produce), *(threading.Thread(target=poll) for _ in range(3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(claimed) == sorted(ids) and len(ids) == 12
