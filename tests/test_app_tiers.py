"""Tiered refresh in the app: each price's age and its tier's promise on the comparison grid and
event detail, the sidebar's "behind" state, tier runs on the runs page, tier settings."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from app_fixtures import Seeded, later, open_page, seed_store
from streamlit.testing.v1 import AppTest

from engine.config import BOOKS
from engine.store import views

COMPARISON, EVENT, RUNS, SETTINGS = "pages/comparison.py", "pages/event.py", "pages/runs.py", "pages/settings.py"


def grid(at: AppTest) -> pl.DataFrame:
    return pl.from_pandas(next(d.value for d in at.dataframe if d.key == "grid"))


def all_dates(at: AppTest) -> AppTest:
    at.radio(key="when").set_value("All dates").run()
    return at


def upcoming(seeded: Seeded, within: timedelta) -> set[str]:
    now = views.utcnow()
    events = seeded.store.events()
    return set(events.filter((pl.col("kickoff") > now) & (pl.col("kickoff") <= now + within))["sr_id"])


def stale_count(at: AppTest) -> int:
    caption = next(c.value for c in at.caption if "older than its refresh tier promises" in c.value)
    return int(caption.split(" with a price older")[0].rsplit("· ", 1)[1])


def test_grid_shows_each_book_s_price_age_and_counts_the_prices_past_their_tier(tmp_path, monkeypatch):
    # The seeded prices were last seen 5 minutes ago: past the near tier's 1.5 min, within the
    # day tier's 7.5 min and the far tier's 22.5 min.
    seeded = seed_store(tmp_path / "oddsdesk.duckdb")
    near = upcoming(seeded, timedelta(hours=2))
    assert near, "the seeded world has events within 2 h"
    at = all_dates(open_page(seeded.db_path, monkeypatch))
    df = grid(at)
    columns = df.columns
    for book in BOOKS:  # the age sits right after the book's "seen" column
        assert columns[columns.index(views.seen_column(book)) + 1] == views.age_column(book)
    ages = df.select("sr_id", pl.max_horizontal(views.age_column(b) for b in BOOKS).alias("age"))
    assert ages["age"].min() >= 5.0
    assert stale_count(at) == len(near)

    # Slower tiers in the settings: the same prices are now within every promise, at once.
    seeded.store.put_settings({"tier_near_interval_min": 4.0})
    assert stale_count(later(at)) == 0
    # A faster day tier makes the day tier's prices stale too.
    seeded.store.put_settings({"tier_near_interval_min": 1.0, "tier_day_interval_min": 1.0})
    assert stale_count(later(at)) == len(upcoming(seeded, timedelta(hours=24)))


def test_event_detail_shows_the_ages_and_the_event_s_tier(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=20)
    near = sorted(upcoming(seeded, timedelta(hours=2)))[0]
    at = open_page(seeded.db_path, monkeypatch, EVENT, {"sr_id": near})
    assert any("near tier: refreshed every 1 min, prices older than 1.5 min in amber" in c.value for c in at.caption)
    table = pl.from_pandas(at.tabs[0].dataframe[0].value)
    listed = [b for b in BOOKS if b in seeded.world.event(near).books]
    for book in listed:
        assert table[views.age_column(book)].drop_nulls().min() >= 5.0


def test_stale_prices_are_flagged_on_their_odds_cells_and_age(tmp_path):
    now = views.utcnow()
    frame = pl.DataFrame({
        "BetPawa Home": [1.5, 1.6], "BetPawa margin %": [5.0, 5.0],
        views.seen_column("betpawa"): [now - timedelta(seconds=100), now - timedelta(seconds=30)],
    }).with_columns(pl.col(views.seen_column("betpawa")).dt.cast_time_unit("us"))
    out = views.with_staleness(frame, now, 90.0)
    assert out[views.age_column("betpawa")].to_list() == [1.7, 0.5]
    assert out[views.stale_flag("BetPawa Home")].to_list() == [True, False]
    assert views.stale_flag("BetPawa margin %") not in out.columns
    assert out[views.status_column(views.age_column("betpawa"))].to_list() == [views.STALE, None]
    never = views.with_staleness(frame, now, None)  # a started event is promised nothing
    assert never[views.stale_flag("BetPawa Home")].to_list() == [False, False]


def publish(seeded: Seeded, behind: dict[str, int]) -> None:
    seeded.store.put_settings({"scheduler_status": {
        "pid": 1, "updated_at": views.utcnow().isoformat(), "next_run_at": None, "mode": "tiers", "running": False,
        "tiers": {"tiers": [{"name": "near", "interval_min": 1, "events": 3, "due": 3, "picked": 3, "behind": 0},
                            {"name": "day", "interval_min": 5, "events": 10, "due": 0, "picked": 0, "behind": 0},
                            {"name": "far", "interval_min": 15, "events": 400, "due": 400, "picked": 100,
                             "behind": behind.get("far", 0)}],
                  "behind": behind}}})


def test_sidebar_says_how_far_behind_a_tier_is_never_silently(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    publish(seeded, {"far": 300})
    at = open_page(seeded.db_path, monkeypatch)
    text = " ".join(m.value for m in at.sidebar.markdown)
    assert "near every 1 min (3 events)" in text and "far every 15 min (400 events)" in text
    assert any("Behind by 300 events (far tier)" in w.value for w in at.sidebar.warning)

    publish(seeded, {})
    assert not [w for w in later(at).sidebar.warning if "Behind" in w.value]


def test_runs_page_lists_tier_runs_by_kind(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    tier_run = seeded.store.start_run("schedule", list(BOOKS), "tier:near+far")
    seeded.store.finish_run(tier_run, "COMPLETED", {"events_total": 3, "events_scraped": 3})
    discovery = seeded.store.start_run("schedule", list(BOOKS), "discovery")
    seeded.store.finish_run(discovery, "COMPLETED", {"events_total": 6})
    at = open_page(seeded.db_path, monkeypatch, RUNS)

    def listed(kind: str) -> dict[int, str]:
        at.selectbox(key="run_kind").set_value(kind).run()
        tables = [pl.from_pandas(d.value) for d in at.dataframe if {"Run", "Kind"} <= set(d.value.columns)]
        if not tables:
            assert any("No run of this kind" in i.value for i in at.info)
            return {}
        return dict(zip(tables[0]["Run"], tables[0]["Kind"]))

    assert listed("Near tier") == listed("Far tier") == {tier_run: "tier:near+far"}
    assert listed("Day tier") == {}
    assert listed("Discovery") == {discovery: "discovery"}
    assert listed("Full cycles") == {r: "full" for r in seeded.runs}
    assert set(listed("All runs")) == {*seeded.runs, tier_run, discovery}


def test_tier_settings_are_validated_and_saved(tmp_path, monkeypatch):
    seeded = seed_store(tmp_path / "oddsdesk.duckdb", events=6)
    at = open_page(seeded.db_path, monkeypatch, SETTINGS)
    at.number_input(key="tier_day_hours").set_value(1.0)  # not beyond the near tier's 2 h
    at.form_submit_button[0].click().run()
    assert any("Not saved" in e.value and "tier_day_hours" in e.value for e in at.error)
    assert "tier_day_hours" not in seeded.store.get_settings()

    at.number_input(key="tier_day_hours").set_value(12.0)
    at.number_input(key="tier_near_interval_min").set_value(0.5)
    at.selectbox(key="refresh_mode").set_value("full")
    at.form_submit_button[0].click().run()
    assert not at.error
    saved = seeded.store.get_settings()
    assert (saved["tier_day_hours"], saved["tier_near_interval_min"], saved["refresh_mode"]) == (12.0, 0.5, "full")
