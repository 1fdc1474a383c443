"""The simulator's world: a reproducible set of fixtures, true probabilities, and three books
quoting them with their own margins, coverage, suspensions and drift."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue, normalize_line
from engine.simulator.quoting import DRIFT_SHARE
from engine.simulator.world import World, build_world

ANCHOR = datetime(2030, 5, 18, 9, 41, tzinfo=UTC)
EPOCHS = (0, 1, 9, 40)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=11, events=200, anchor=ANCHOR)


def by_key(prices):
    return {(p.market, p.line, p.outcome): p for p in prices}


def instances(prices):
    grouped = defaultdict(dict)
    for p in prices:
        grouped[(p.market, p.line)][p.outcome] = p
    return grouped


def margin(group) -> float:
    return sum(1 / p.odds for p in group.values()) - 1


def test_same_seed_rebuilds_the_identical_world_and_quotes(world):
    again = build_world(seed=11, events=200, anchor=ANCHOR)
    assert again.tournaments == world.tournaments
    assert again.events == world.events
    # Asked in another order (Bet9ja first, a late epoch first), the answers are the same.
    for ev in reversed(world.events[::20]):
        for book in reversed(BOOKS):
            for epoch in reversed(EPOCHS):
                assert again.quotes(book, ev.sr_id, epoch) == world.quotes(book, ev.sr_id, epoch)
        assert again.true_probabilities(ev.sr_id) == world.true_probabilities(ev.sr_id)


def test_a_different_seed_gives_a_different_world(world):
    other = build_world(seed=12, events=200, anchor=ANCHOR)
    assert {e.sr_id for e in other.events}.isdisjoint({e.sr_id for e in world.events})
    ours = [(e.home, e.away, e.kickoff) for e in world.events]
    theirs = [(e.home, e.away, e.kickoff) for e in other.events]
    assert ours != theirs
    first = next(e for e in other.events if "sportybet" in e.books)
    assert other.quotes("sportybet", first.sr_id) != world.quotes(
        "sportybet", next(e for e in world.events if "sportybet" in e.books).sr_id)


def test_world_looks_like_a_week_of_football(world):
    events = world.events
    assert [e.kickoff for e in events] == sorted(e.kickoff for e in events)
    assert all(e.kickoff.tzinfo is not None and e.kickoff.utcoffset() == timedelta(0) for e in events)
    assert all(ANCHOR < e.kickoff <= ANCHOR + timedelta(days=8) for e in events)
    assert any(e.kickoff - ANCHOR < timedelta(hours=2) for e in events)
    assert sum(e.kickoff - ANCHOR < timedelta(hours=24) for e in events) > len(events) // 20
    assert len({e.sr_id for e in events}) == len(events)
    assert all(len(e.sr_id) == 8 and e.sr_id.isdigit() for e in events)
    for e in events:
        assert e.book_ids["sportybet"] == f"sr:match:{e.sr_id}"
        assert e.book_ids["betpawa"].isdigit() and e.book_ids["bet9ja"].isdigit()
        assert e.home != e.away
        assert " - " not in e.home and " - " not in e.away  # Bet9ja splits "Home - Away" on it
    teams = {e.home for e in events} | {e.away for e in events}
    assert any(not name.isascii() for name in teams)
    keys = [t.key for t in world.tournaments]
    assert len(keys) == len(set(keys))
    for t in world.tournaments:
        assert t.sportybet_id.startswith("sr:tournament:") and t.sportybet_category_id.startswith("sr:category:")
        assert t.betpawa_id.isdigit() and t.bet9ja_id.isdigit() and t.bet9ja_country_id.isdigit()


def test_full_size_world_has_production_proportions():
    full = build_world(seed=1, events=1500, anchor=ANCHOR)
    assert len(full.events) == 1500
    assert 140 <= len(full.tournaments) <= 160
    listed = {b: len(full.listed(b)) for b in BOOKS}
    assert listed["betpawa"] < listed["bet9ja"] < listed["sportybet"] <= 1500


def test_every_quoted_price_is_a_catalogue_outcome_the_book_can_express(world):
    cat = load_catalogue()
    seen_lines = defaultdict(set)
    for ev in world.events[::4]:
        for book in ev.books:
            for epoch in (0, 9):
                prices = world.quotes(book, ev.sr_id, epoch)
                assert prices
                assert len(by_key(prices)) == len(prices)
                for p in prices:
                    market = cat.markets[p.market]
                    assert market.ids[book], (book, p.market)
                    names = {o.key: o.names[book] for o in market.outcomes}
                    assert names[p.outcome], (book, p.market, p.outcome)
                    assert (p.line is not None) == market.has_line
                    assert p.line == normalize_line(p.line)
                    assert p.odds >= 1.01 and round(p.odds, 2) == p.odds
                    # Bet9ja's S_OUGGNG carries no @line, so it cannot round-trip a total.
                    assert not (book == "bet9ja" and p.market == "over_under_btts_ft")
                    if p.line is not None:
                        seen_lines[(book, market.line_kind)].add(p.line)
    for book in BOOKS:
        assert all((x - 0.5).is_integer() for x in seen_lines[(book, "total")])
        assert all(x.is_integer() and x != 0 for x in seen_lines[(book, "european_handicap")])
        assert all((x * 4).is_integer() for x in seen_lines[(book, "asian_handicap")])
    assert any(not (x * 2).is_integer() for x in seen_lines[("sportybet", "asian_handicap")])


def test_exclusive_markets_carry_positive_sane_margins_at_every_epoch(world):
    by_book = defaultdict(list)
    for ev in world.events[::3]:
        for book in ev.books:
            for epoch in EPOCHS:
                for (market, _line), group in instances(world.quotes(book, ev.sr_id, epoch)).items():
                    if market in ("1x2_ft", "over_under_ft", "btts_ft", "asian_handicap_ft", "handicap_3way_ft"):
                        assert 0 < margin(group) < 0.2, (book, market, group)
                    if market == "1x2_ft" and epoch == 0:
                        by_book[book].append(margin(group))
    # The books' 1X2 margins as the desk knows them: SportyBet sharpest, Bet9ja widest.
    assert 0.04 <= statistics.mean(by_book["sportybet"]) <= 0.06
    assert 0.05 <= statistics.mean(by_book["betpawa"]) <= 0.07
    assert 0.06 <= statistics.mean(by_book["bet9ja"]) <= 0.09


def test_true_probabilities_are_coherent_and_books_quote_around_them(world):
    errors = []
    for ev in world.events[::5]:
        truth = world.true_probabilities(ev.sr_id)
        assert sum(truth[("1x2_ft", None, o)] for o in ("home", "draw", "away")) == pytest.approx(1.0, abs=1e-9)
        assert sum(p for (m, _, _), p in truth.items() if m == "htft") == pytest.approx(1.0, abs=1e-9)
        assert truth[("over_under_ft", 2.5, "over")] + truth[("over_under_ft", 2.5, "under")] == pytest.approx(1.0)
        assert truth[("asian_handicap_ft", -0.25, "home")] + truth[("asian_handicap_ft", -0.25, "away")] == \
            pytest.approx(1.0)
        assert all(0.0 <= p <= 1.0 for p in truth.values())
        for book in BOOKS:
            view = world.true_probabilities(ev.sr_id, book=book)
            assert sum(p for (m, _, _), p in view.items() if m == "correct_score_ft") == pytest.approx(1.0)
        for book in ev.books:
            group = instances(world.quotes(book, ev.sr_id))[("1x2_ft", None)]
            total = sum(1 / p.odds for p in group.values())
            errors += [abs(1 / p.odds / total - truth[("1x2_ft", None, o)]) for o, p in group.items()]
    assert statistics.mean(errors) < 0.03
    assert max(errors) < 0.1


def test_drift_moves_about_the_configured_share_and_changed_prices_is_the_diff(world):
    moved = total = 0
    for ev in world.events[::8]:
        for book in ev.books:
            assert world.changed_prices(book, ev.sr_id, 0) == set()
            before = by_key(world.quotes(book, ev.sr_id, 0))
            for epoch in range(1, 25):
                now = by_key(world.quotes(book, ev.sr_id, epoch))
                assert now.keys() == before.keys()
                diff = {k for k, p in now.items() if (p.odds, p.available) != (before[k].odds, before[k].available)}
                assert world.changed_prices(book, ev.sr_id, epoch) == diff
                moved += len(diff)
                total += len(now)
                before = now
    assert 0.5 * DRIFT_SHARE <= moved / total <= 1.5 * DRIFT_SHARE


def test_some_events_are_missing_on_some_book(world):
    assert all(e.books and e.books <= set(BOOKS) for e in world.events)
    assert any(len(e.books) < 3 for e in world.events)
    assert sum(len(e.books) == 3 for e in world.events) > len(world.events) // 2
    missing = next(e for e in world.events if len(e.books) < 3)
    absent = next(b for b in BOOKS if b not in missing.books)
    assert world.quotes(absent, missing.sr_id) == []
    assert world.changed_prices(absent, missing.sr_id, 3) == set()


def test_suspended_outcomes_exist_on_betpawa_and_sportybet_never_on_bet9ja(world):
    suspended = defaultdict(int)
    for ev in world.events[::2]:
        for book in ev.books:
            for epoch in (0, 30):
                suspended[book] += sum(not p.available for p in world.quotes(book, ev.sr_id, epoch))
    assert suspended["betpawa"] > 0
    assert suspended["sportybet"] > 0
    assert suspended["bet9ja"] == 0


def test_betpawa_offers_fewer_markets_and_competitors_add_their_own(world):
    cat = load_catalogue()
    depth = defaultdict(list)
    competitor_only = defaultdict(int)
    for ev in world.events:
        if len(ev.books) < 3:
            continue
        for book in BOOKS:
            prices = world.quotes(book, ev.sr_id)
            depth[book].append(len(instances(prices)))
            competitor_only[book] += sum(1 for p in prices if not cat.markets[p.market].ids["betpawa"])
    assert statistics.mean(depth["betpawa"]) < statistics.mean(depth["bet9ja"]) < statistics.mean(depth["sportybet"])
    assert competitor_only["betpawa"] == 0
    assert competitor_only["sportybet"] > 0 and competitor_only["bet9ja"] > 0
