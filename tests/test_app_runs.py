"""Scrape runs page and the sidebar's run controls: runs listed, progress, retry, scrape now."""

from __future__ import annotations

import json

import polars as pl
from app_fixtures import Seeded, later, open_page, seed_store, seeded  # noqa: F401  (fixture)

from engine.config import BOOKS

PAGE = "pages/runs.py"


def table(at, column: str) -> pl.DataFrame:
    found = [pl.from_pandas(d.value) for d in at.dataframe if column in d.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def test_runs_are_listed_with_status_and_counts(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    runs = table(at, "Run")
    assert sorted(runs["Run"].to_list()) == sorted(seeded.runs)
    stored = {r["id"]: r for r in seeded.store.runs().iter_rows(named=True)}
    for row in runs.iter_rows(named=True):
        assert row["Status"] == stored[row["Run"]]["status"]
        assert row["Events"] == stored[row["Run"]]["events_total"]
    assert set(runs["Status"]) == {"PARTIAL", "COMPLETED"}


def test_run_detail_shows_per_book_counts_and_the_failed_event(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    partial = seeded.runs[0]
    at.selectbox(key="run_id").set_value(partial).run()
    books = table(at, "Book")
    summary = seeded.store.run(partial)["summary"]["books"]
    for row in books.iter_rows(named=True):
        book = next(b for b in BOOKS if row["Book"].lower() == b)
        assert row["Scraped"] == summary[book]["scraped"]
        assert row["Failed"] == summary[book]["failed"]
    failures = table(at, "SR id")
    assert failures["SR id"].to_list() == [seeded.failed_sr_id]
    assert "timeout" in failures["Errors"][0] and "Bet9ja" in failures["Errors"][0]


def test_retry_failed_events_writes_a_run_request(seeded: Seeded, monkeypatch):
    at = open_page(seeded.target, monkeypatch, PAGE)
    partial = seeded.runs[0]
    at.selectbox(key="run_id").set_value(partial).run()
    assert not at.button(key="retry_failed").disabled
    at.button(key="retry_failed").click().run()
    requests = seeded.store.run_requests(limit=50).filter(pl.col("kind") == "retry_failed")
    assert requests.height == 1
    assert json.loads(requests["payload"][0]) == {"run_id": partial}
    assert any(f"Request #{requests['id'][0]}" in i.value for i in at.info)

    at.selectbox(key="run_id").set_value(seeded.runs[1]).run()
    assert at.button(key="retry_failed").disabled  # the complete run has nothing to retry


def test_a_running_run_shows_its_progress(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=12)
    run_id = seeded.store.start_run("schedule", list(BOOKS))
    seeded.store.add_progress(run_id, "BATCH_START", "batch 2/4: 50 events", None, 1, 4)
    at = open_page(seeded.target, monkeypatch, PAGE)
    bars = at.get("progress")
    assert len(bars) == 1
    assert bars[0].value == 25  # percent
    assert f"Run #{run_id}" in bars[0].proto.text
    assert any("batch 2/4: 50 events" in c.value for c in at.caption)


def test_scrape_now_shows_the_request_from_pending_to_done(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=12)
    at = open_page(seeded.target, monkeypatch)
    at.sidebar.button(key="scrape_now").click().run()
    requests = seeded.store.run_requests()
    assert requests.height == 1 and requests["kind"][0] == "scrape_now"
    rid = requests["id"][0]
    assert any(f"Request #{rid}" in i.value and "pending" in i.value for i in at.sidebar.info)

    # what the scheduler process does with it, through the same store
    assert [r["id"] for r in seeded.store.claim_run_requests()] == [rid]
    later(at)
    assert any("picked up" in i.value for i in at.sidebar.info)
    seeded.store.finish_run_request(rid, "DONE", "run 3: COMPLETED", 3)
    later(at)
    assert any(f"Request #{rid}: done — run #3" in s.value for s in at.sidebar.success)
