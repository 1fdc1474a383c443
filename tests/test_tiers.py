"""Refresh tiers: which tier an event is in, what a tick refreshes when the budget is short, and
that tier settings are validated and re-tier events the moment they change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from engine.config import BOOKS, ConfigError, Settings, load_settings
from engine.pipeline.tiers import (
    Listed,
    due_work,
    promise_expr,
    service_seconds,
    tick_budget,
    tier_of,
    tiers_from,
    waves,
)
from scheduler.coordinator import current_listings, discovery_cutoffs, run_kind

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = timedelta(seconds=1)


@pytest.fixture()
def settings() -> Settings:
    return load_settings(db_path="unused.duckdb")


def tier_name(settings: Settings, kickoff: datetime) -> str | None:
    tier = tier_of(kickoff, NOW, tiers_from(settings))
    return tier.name if tier else None


def test_tier_boundaries_belong_to_the_nearer_tier(settings):
    assert tier_name(settings, NOW + S) == "near"
    assert tier_name(settings, NOW + 2 * H) == "near"
    assert tier_name(settings, NOW + 2 * H + S) == "day"
    assert tier_name(settings, NOW + 24 * H) == "day"
    assert tier_name(settings, NOW + 24 * H + S) == "far"
    assert tier_name(settings, NOW + 24 * 7 * H) == "far"
    # Kicked off: pre-match refresh is over.
    assert tier_name(settings, NOW) is None
    assert tier_name(settings, NOW - 5 * S) is None


def test_default_tiers_are_the_issue_s(settings):
    tiers = tiers_from(settings)
    assert [(t.name, t.interval_s) for t in tiers] == [("near", 60), ("day", 300), ("far", 900)]
    assert [t.promise_s for t in tiers] == [90, 450, 1350]
    assert settings.refresh_mode == "tiers" and settings.discovery_interval_min == 15


def test_the_pages_promise_matches_the_tier_of_each_kickoff(settings):
    tiers = tiers_from(settings)
    kickoffs = [NOW - H, NOW + S, NOW + 2 * H, NOW + 2 * H + S, NOW + 24 * H + S]
    frame = pl.DataFrame({"kickoff": kickoffs}).with_columns(promise_expr(pl.col("kickoff"), NOW, tiers).alias("p"))
    expected = [tier_of(k, NOW, tiers) for k in kickoffs]
    assert frame["p"].to_list() == [t.promise_s if t else None for t in expected]


def listed(n: int, start: timedelta, step: timedelta, prefix: str, books=BOOKS) -> list[Listed]:
    return [Listed(f"{prefix}{i}", NOW + start + i * step, tuple(books)) for i in range(n)]


def test_overload_slips_the_far_tier_first_and_reports_how_far_behind(settings):
    events = (listed(5, 24 * H + S, H, "far") + listed(3, 10 * 60 * S, 10 * 60 * S, "near")
              + listed(4, 3 * H, H, "day"))
    budget = {b: 5 for b in BOOKS}  # room for 5 of the 12 due events
    work = due_work(events, {}, NOW, budget, tiers_from(settings))

    assert [p.sr_id for p in work.picks] == ["near0", "near1", "near2", "day0", "day1"]
    assert {t: (load.due, load.picked, load.behind) for t, load in work.tiers.items()} == {
        "near": (3, 3, 0), "day": (4, 2, 2), "far": (5, 0, 5)}
    assert work.behind == {"day": 2, "far": 5}
    assert work.requests == {b: 5 for b in BOOKS}
    assert run_kind(work) == "tier:near+day"


def test_within_the_budget_nothing_is_behind_and_soonest_kickoff_goes_first(settings):
    events = listed(4, 30 * H, -H, "ev")  # kickoffs 30 h, 29 h, 28 h, 27 h: all far
    work = due_work(events, {}, NOW, {b: 100 for b in BOOKS}, tiers_from(settings))
    assert [p.sr_id for p in work.picks] == ["ev3", "ev2", "ev1", "ev0"]
    assert work.behind == {} and run_kind(work) == "tier:far"


def test_a_book_out_of_budget_never_holds_back_the_other_books(settings):
    events = listed(4, 10 * 60 * S, 60 * S, "near")
    budget = {"betpawa": 10, "sportybet": 10, "bet9ja": 1}
    work = due_work(events, {}, NOW, budget, tiers_from(settings))
    assert [p.books for p in work.picks] == [BOOKS, ("betpawa", "sportybet"), ("betpawa", "sportybet"),
                                             ("betpawa", "sportybet")]
    assert work.behind == {"near": 3}  # bet9ja's prices of three events wait for a later tick


def test_only_pairs_whose_interval_has_passed_are_due(settings):
    tiers = tiers_from(settings)
    near, far = Listed("n", NOW + H, BOOKS), Listed("f", NOW + 48 * H, BOOKS)
    last = {("n", "betpawa"): NOW - 61 * S, ("n", "sportybet"): NOW - 30 * S, ("n", "bet9ja"): NOW - 59 * S,
            **{("f", b): NOW - 5 * 60 * S for b in BOOKS}}
    work = due_work([near, far], last, NOW, {b: 10 for b in BOOKS}, tiers)
    assert [(p.sr_id, p.books) for p in work.picks] == [("n", ("betpawa",))]
    # Half a tick of slack: refreshed 59 s ago is due at a 15 s tick, not one tick later.
    work = due_work([near, far], last, NOW, {b: 10 for b in BOOKS}, tiers, slack_s=7.5)
    assert [(p.sr_id, p.books) for p in work.picks] == [("n", ("betpawa", "bet9ja"))]
    assert work.tiers["far"].events == 1 and work.tiers["far"].due == 0


def test_a_failed_pair_waits_for_its_retry_time_then_is_due_again(settings):
    tiers = tiers_from(settings)
    ev = Listed("n", NOW + H, BOOKS)
    last = {("n", b): NOW - 10 * 60 * S for b in BOOKS}  # stored 10 min ago: overdue
    retry = {("n", "bet9ja"): NOW + 30 * S}  # Bet9ja failed at the last tick
    work = due_work([ev], last, NOW, {b: 10 for b in BOOKS}, tiers, slack_s=7.5, not_before=retry)
    assert work.picks[0].books == ("betpawa", "sportybet") and work.behind == {}
    later = due_work([ev], last, NOW + 25 * S, {b: 10 for b in BOOKS}, tiers, slack_s=7.5, not_before=retry)
    assert later.picks[0].books == BOOKS


def test_a_settings_change_re_tiers_the_same_events(settings):
    events = [Listed("a", NOW + 3 * H, BOOKS), Listed("b", NOW + 30 * H, BOOKS)]
    last = {(e.sr_id, b): NOW - 2 * 60 * S for e in events for b in BOOKS}  # refreshed 2 min ago
    before = due_work(events, last, NOW, {b: 10 for b in BOOKS}, tiers_from(settings))
    assert before.picks == []
    assert {t: load.events for t, load in before.tiers.items()} == {"near": 0, "day": 1, "far": 1}

    changed = settings.with_saved({"tier_near_hours": 4, "tier_near_interval_min": 1.5, "tier_day_hours": 36,
                                   "scheduler_status": {"pid": 1}})
    after = due_work(events, last, NOW, {b: 10 for b in BOOKS}, tiers_from(changed))
    assert {t: load.events for t, load in after.tiers.items()} == {"near": 1, "day": 1, "far": 0}
    assert [p.sr_id for p in after.picks] == ["a"]  # now near: 2 min old is past its 1.5 min


@pytest.mark.parametrize("values, names", [
    ({"tier_day_hours": 2}, "tier_day_hours"),
    ({"tier_near_hours": 30}, "tier_day_hours"),
    ({"tier_near_interval_min": 0.25}, "tier_near_interval_min"),
    ({"tier_far_interval_min": 0}, "tier_far_interval_min"),
    ({"discovery_interval_min": 0.1}, "discovery_interval_min"),
    ({"refresh_mode": "sometimes"}, "refresh_mode"),
])
def test_bad_tier_settings_are_refused_with_their_name(settings, values, names):
    with pytest.raises(ConfigError, match=names):
        settings.with_overrides(values)


def test_a_bad_environment_boundary_names_the_variable():
    with pytest.raises(ConfigError, match="ODDSDESK_TIER_DAY_HOURS"):
        load_settings(db_path="unused.duckdb", tier_near_hours=6, tier_day_hours=6)


def test_service_time_is_recovered_from_a_run_that_queued_for_slots():
    # 120 requests, 50 slots, 0.4 s each: 50 end at 0.4 s, 50 at 0.8 s, 20 at 1.2 s.
    summed = 50 * 0.4 + 50 * 0.8 + 20 * 1.2
    assert waves(120, 50) == pytest.approx(summed / 0.4)
    assert service_seconds(120, summed, 50) == pytest.approx(0.4)
    assert service_seconds(0, 0.0, 50) is None
    # 80% of a 15 s tick = 30 waves of 50 slots at 0.4 s; at 10 s one wave; at 30 s part of one.
    assert tick_budget(50, 0.4, 15) == 1500
    assert tick_budget(15, 10.0, 15) == 15
    assert tick_budget(15, 30.0, 15) == 6
    assert tick_budget(15, 600.0, 15) == 1


def _listing_rows(rows):
    cols = ["sr_id", "bookmaker", "book_event_id", "listed_at", "kickoff", "country", "tournament", "home",
            "away", "seen_at"]
    return pl.DataFrame([dict(zip(cols, r)) for r in rows])


def test_listings_follow_each_book_s_last_successful_discovery():
    runs = pl.DataFrame({
        "id": [3, 2, 1],
        "status": ["CONNECTION_FAILED", "FAILED", "COMPLETED"],
        "started_at": [NOW - 60 * S, NOW - 120 * S, NOW - H],
        "summary": ['{"books": {"betpawa": {"unreachable": false}, "sportybet": {"unreachable": true},'
                    ' "bet9ja": {"unreachable": false}}}', None,
                    '{"books": {"betpawa": {}, "sportybet": {}, "bet9ja": {}}}'],
    })
    cutoffs = discovery_cutoffs(runs)
    # SportyBet was down at the newest discovery: its listings from the one before still count.
    assert cutoffs == {"betpawa": NOW - 60 * S, "sportybet": NOW - H, "bet9ja": NOW - 60 * S}
    ko = NOW + 5 * H
    frame = _listing_rows([
        ("1", "betpawa", "old-id", NOW - 2 * H, ko, "C", "T", "A", "B", None),
        ("1", "betpawa", "new-id", NOW - 30 * S, ko, "C", "T", "A", "B", NOW - 30 * S),
        ("1", "sportybet", "sr:match:1", NOW - 50 * 60 * S, ko, "C", "T", "A", "B", None),
        ("1", "bet9ja", "dropped", NOW - 50 * 60 * S, ko, "C", "T", "A", "B", NOW - 50 * 60 * S),
    ])
    events, listings, seen = current_listings(frame, cutoffs)
    assert events == [Listed("1", ko, ("betpawa", "sportybet"))]  # Bet9ja no longer lists it
    assert listings[("1", "betpawa")].book_event_id == "new-id"
    assert seen == {("1", "betpawa"): NOW - 30 * S}
