"""The alert rules on scripted price paths: each rule's trigger and non-triggers, and the dedup.

A script is each book's price of one outcome over time, one (minute, odds) step per change, odds
None = suspended; ``scene`` turns it into what the store hands the rules at a batch's time: the
window's moves, this batch's moves and the prices now.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from engine.markets.alerts import (
    BETPAWA_PULLED,
    COMPETITORS_PULLED,
    EXISTING_SCHEMA,
    MARGIN_GAP,
    MOVE_SCHEMA,
    STEAM,
    AlertThresholds,
    batch_moves,
    describe,
    disappearances,
    margin_bounds,
    margin_gaps,
    reconcile,
    steam,
)
from engine.markets.margins import add_margins
from engine.simulator.world import build_world
from engine.store.types import PRICE_SCHEMA

T0 = datetime(2026, 3, 1, 12, 0)
SR = "sr:match:1"
NO_LINE = -1_000_000.0
T = AlertThresholds(steam_pct=8.0, steam_window_min=30.0, margin_gap_pts=3.0)
Script = dict[str, list[tuple[float, float | None]]]  # book -> [(minute, odds or None)]
PRICE_COLUMNS = {"sr_id": pl.String, "bookmaker": pl.String, "market": pl.String, "line_key": pl.Float64,
                 "line": pl.Float64, "outcome": pl.String, "odds": pl.Float64, "available": pl.Boolean}


def minute(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def scene(script: Script, now_min: float, t: AlertThresholds = T, market: str = "1x2_ft",
          outcome: str = "home") -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(window moves, this batch's moves, prices now) of one outcome at minute ``now_min``."""
    moves, prices = [], []
    for book, steps in script.items():
        seen = [(m, o) for m, o in steps if m <= now_min]
        for (_, before), (m, after) in zip(seen, seen[1:]):
            moves.append((SR, book, market, NO_LINE, None, outcome, minute(m), before or 1.0, before is not None,
                          after or 1.0, after is not None))
        last = seen[-1][1]
        prices.append((SR, book, market, NO_LINE, None, outcome, last or 1.0, last is not None))
    all_moves = pl.DataFrame(moves, schema=MOVE_SCHEMA, orient="row")
    start = t.window_start(minute(now_min))
    window = all_moves.filter(pl.col("moved_at") > start)
    now = all_moves.filter(pl.col("moved_at") == minute(now_min))
    return window, now, pl.DataFrame(prices, schema=PRICE_COLUMNS, orient="row")


def steam_at(script: Script, now_min: float, t: AlertThresholds = T) -> pl.DataFrame:
    return steam(*scene(script, now_min, t), t).filter(pl.col("holds"))


# --- steam -------------------------------------------------------------------------------


def test_a_competitor_shortening_past_the_threshold_while_betpawa_stands_still_is_steam():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (20, 1.90)], "bet9ja": [(0, 2.12)]}
    found = steam_at(script, 20)
    assert found.height == 1
    row = found.row(0, named=True)
    assert (row["kind"], row["bookmaker"], row["market"], row["outcome"]) == (STEAM, "sportybet", "1x2_ft", "home")
    assert row["size"] == pytest.approx((1.90 / 2.15 - 1) * 100, abs=0.01)
    assert row["dedup_key"] == f"steam|{SR}|1x2_ft|{NO_LINE}|home|sportybet"


def test_a_move_within_the_threshold_is_not_steam():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (20, 2.00)]}  # -7.0 %
    assert steam_at(script, 20).is_empty()


def test_a_drift_counts_as_steam_too():
    script = {"betpawa": [(0, 2.10)], "bet9ja": [(0, 2.12), (5, 2.40)]}  # +13.2 %
    found = steam_at(script, 5)
    assert found["bookmaker"].to_list() == ["bet9ja"] and found["size"][0] > 8


def test_small_steps_inside_the_window_add_up():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (10, 2.05), (20, 1.95)]}
    assert steam_at(script, 10).is_empty()  # -4.7 % so far
    found = steam_at(script, 20)
    assert found["size"][0] == pytest.approx((1.95 / 2.15 - 1) * 100, abs=0.01)


def test_a_step_before_the_window_does_not_count():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (10, 2.05), (45, 1.95)]}
    # At minute 45 the window starts at 15: the move is 2.05 -> 1.95 (-4.9 %), not from 2.15.
    assert steam_at(script, 45).is_empty()


def test_no_steam_when_betpawa_moved_in_the_window():
    script = {"betpawa": [(0, 2.10), (15, 2.05)], "sportybet": [(0, 2.15), (20, 1.85)]}
    assert steam_at(script, 20).is_empty()
    # ...but once BetPawa's move has left the window, a new competitor move is steam again.
    script["sportybet"].append((50, 1.65))
    assert steam_at(script, 50)["size"][0] == pytest.approx((1.65 / 1.85 - 1) * 100, abs=0.01)


def test_betpawa_quoting_an_outcome_for_the_first_time_is_not_a_move():
    script = {"betpawa": [(10, 2.10)], "sportybet": [(0, 2.15), (20, 1.85)]}
    assert steam_at(script, 20).height == 1


def test_no_steam_when_betpawa_does_not_offer_the_outcome():
    script = {"betpawa": [(0, None)], "sportybet": [(0, 2.15), (20, 1.85)]}
    assert steam_at(script, 20).is_empty()


def test_a_suspension_and_a_new_price_measure_from_the_price_before_it():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (10, None), (20, 1.85)]}
    assert steam_at(script, 10).is_empty()  # suspended now: nothing to compare
    assert steam_at(script, 20)["size"][0] == pytest.approx((1.85 / 2.15 - 1) * 100, abs=0.01)


def test_a_competitor_price_that_did_not_move_in_this_batch_is_not_re_examined():
    script = {"betpawa": [(0, 2.10)], "sportybet": [(0, 2.15), (20, 1.85)], "bet9ja": [(0, 2.12), (25, 2.13)]}
    assert steam_at(script, 25).is_empty()  # SportyBet's move was reported at minute 20


def test_betpawa_moving_the_outcome_is_evidence_that_clears_steam():
    script = {"betpawa": [(0, 2.10), (25, 1.90)], "sportybet": [(0, 2.15), (20, 1.85)]}
    obs = steam(*scene(script, 25), T)
    cleared = obs.filter(~pl.col("holds"))
    assert set(cleared["bookmaker"]) == {"sportybet", "bet9ja"}
    assert f"steam|{SR}|1x2_ft|{NO_LINE}|home|sportybet" in cleared["dedup_key"].to_list()


# --- margin gap ----------------------------------------------------------------------------


def over_under(prices: dict[str, tuple[float | None, float | None]]) -> pl.DataFrame:
    """Over/Under 2.5 of one event: book -> (over, under), None = suspended."""
    rows = [(SR, book, "over_under_ft", 2.5, 2.5, outcome, odds or 1.0, odds is not None)
            for book, pair in prices.items() for outcome, odds in zip(("over", "under"), pair)]
    return pl.DataFrame(rows, schema=PRICE_COLUMNS, orient="row")


GROUP = pl.DataFrame({"sr_id": [SR], "market": ["over_under_ft"], "line_key": [2.5]})


def margin(odds: tuple[float, float]) -> float:
    return (1 / odds[0] + 1 / odds[1] - 1) * 100


def test_betpawa_margin_above_the_best_competitor_by_more_than_the_threshold_is_an_alert():
    books = {"betpawa": (1.80, 1.80), "sportybet": (1.95, 1.90), "bet9ja": (1.93, 1.93)}
    found = margin_gaps(over_under(books), GROUP, T)
    assert found.height == 1
    row = found.row(0, named=True)
    best = margin(books["bet9ja"])
    assert row["holds"] and row["kind"] == MARGIN_GAP and row["bookmaker"] == "betpawa" and row["outcome"] is None
    assert row["size"] == pytest.approx(margin(books["betpawa"]) - best, abs=0.01)
    assert '"best_book":"bet9ja"' in row["data"]


def test_margins_are_add_margins_figures_group_by_group_on_the_simulators_world():
    world = build_world(seed=11, events=12)
    rows = [(e.sr_id, b, p.market, p.line, p.outcome, p.odds, p.available)
            for e in world.events for b in e.books for p in world.quotes(b, e.sr_id, 3)]  # epoch 3: some suspended
    prices = pl.DataFrame(rows, schema=PRICE_SCHEMA, orient="row").with_columns(
        line_key=pl.col("line").fill_null(NO_LINE))
    ours = margin_bounds(prices).collect()
    theirs = add_margins(prices).group_by("sr_id", "market", "line_key", "bookmaker").agg(
        m=pl.col("margin_pct").first())
    group = ["sr_id", "market", "line_key"]
    bp = theirs.filter(pl.col("bookmaker") == "betpawa").select(*group, bp="m")
    best = theirs.filter((pl.col("bookmaker") != "betpawa") & pl.col("m").is_not_null()).group_by(group).agg(
        best=pl.col("m").min())
    both = ours.join(bp, on=group, how="left").join(best, on=group, how="left")
    assert both.height > 1000 and both["bp"].null_count() > 0, "complete and incomplete sets both covered"
    assert both["bp_margin"].eq_missing(both["bp"]).all()
    assert both["best_margin"].eq_missing(both["best"]).all()


def test_a_gap_back_to_half_the_threshold_is_evidence_that_clears():
    books = {"betpawa": (1.91, 1.91), "sportybet": (1.95, 1.90), "bet9ja": (1.93, 1.93)}  # 1.1 points
    assert margin_gaps(over_under(books), GROUP, T)["holds"].to_list() == [False]


def test_a_gap_just_under_the_threshold_neither_raises_nor_clears():
    books = {"betpawa": (1.90, 1.90), "sportybet": (1.95, 1.90), "bet9ja": (1.93, 1.93)}  # 1.6 points
    assert margin_gaps(over_under(books), GROUP, T).is_empty(), "hysteresis: a gap hovering near 3 does not flap"


def test_an_incomplete_or_suspended_set_neither_raises_nor_clears():
    suspended = {"betpawa": (1.50, None), "sportybet": (1.95, 1.90), "bet9ja": (1.93, 1.93)}
    assert margin_gaps(over_under(suspended), GROUP, T).is_empty()
    no_rival = {"betpawa": (1.50, 1.50), "sportybet": (1.95, None)}
    assert margin_gaps(over_under(no_rival), GROUP, T).is_empty()
    pulled = {"betpawa": (None, None), "sportybet": (1.95, 1.90)}
    assert margin_gaps(over_under(pulled), GROUP, T)["holds"].to_list() == [False], "BetPawa offers nothing"


def test_a_competitor_set_without_a_margin_does_not_count_as_the_best():
    books = {"betpawa": (1.80, 1.80), "sportybet": (3.00, None), "bet9ja": (1.88, 1.88)}
    row = margin_gaps(over_under(books), GROUP, T).row(0, named=True)
    assert row["size"] == pytest.approx(margin(books["betpawa"]) - margin(books["bet9ja"]), abs=0.01)


def test_groups_the_batch_did_not_touch_are_not_judged():
    books = {"betpawa": (1.80, 1.80), "sportybet": (1.95, 1.90)}
    other = GROUP.with_columns(line_key=pl.lit(3.5))
    assert margin_gaps(over_under(books), other, T).is_empty()


# --- a market on one side only ---------------------------------------------------------------


def pulled_moves(books: list[str]) -> pl.DataFrame:
    rows = [(SR, b, "over_under_ft", 2.5, 2.5, o, minute(5), 1.9, True, 1.9, False)
            for b in books for o in ("over", "under")]
    return pl.DataFrame(rows, schema=MOVE_SCHEMA, orient="row")


def with_1x2(prices: pl.DataFrame, books: tuple[str, ...] = ("betpawa", "sportybet", "bet9ja")) -> pl.DataFrame:
    """Each book still offers 1X2, so the event itself is still on every book."""
    rows = [(SR, b, "1x2_ft", NO_LINE, None, o, 3.0, True) for b in books for o in ("home", "draw", "away")]
    return pl.concat([prices, pl.DataFrame(rows, schema=PRICE_COLUMNS, orient="row")])


def test_a_market_every_competitor_pulled_while_betpawa_offers_it():
    prices = with_1x2(over_under({"betpawa": (1.9, 1.9), "sportybet": (None, None), "bet9ja": (None, None)}))
    found = disappearances(prices, pulled_moves(["sportybet"]), GROUP)
    row = found.filter(pl.col("kind") == COMPETITORS_PULLED).row(0, named=True)
    assert row["holds"] and row["bookmaker"] == "sportybet,bet9ja"
    assert found.filter(pl.col("kind") == BETPAWA_PULLED)["holds"].to_list() == [False]


def test_one_competitor_still_offering_it_is_no_alert():
    prices = with_1x2(over_under({"betpawa": (1.9, 1.9), "sportybet": (None, None), "bet9ja": (1.93, None)}))
    found = disappearances(prices, pulled_moves(["sportybet"]), GROUP)
    assert not found["holds"].any()


def test_betpawa_pulling_a_market_every_competitor_still_offers():
    prices = with_1x2(over_under({"betpawa": (None, None), "sportybet": (1.95, 1.9), "bet9ja": (1.93, 1.93)}))
    found = disappearances(prices, pulled_moves(["betpawa"]), GROUP)
    row = found.filter(pl.col("kind") == BETPAWA_PULLED).row(0, named=True)
    assert row["holds"] and row["bookmaker"] == "betpawa"


def test_a_book_that_took_the_whole_event_off_raises_no_market_alerts():
    prices = with_1x2(over_under({"betpawa": (1.9, 1.9), "sportybet": (None, None)}), ("betpawa",))
    prices = pl.concat([prices, pl.DataFrame([(SR, "sportybet", "1x2_ft", NO_LINE, None, "home", 2.0, False)],
                                             schema=PRICE_COLUMNS, orient="row")])
    found = disappearances(prices, pulled_moves(["sportybet"]), GROUP)
    assert not found["holds"].any() and COMPETITORS_PULLED not in found["kind"].to_list()


# --- what the batch moved ------------------------------------------------------------------


def test_batch_moves_pairs_each_change_with_the_price_before_it():
    key = {"sr_id": SR, "bookmaker": "sportybet", "market": "1x2_ft", "line_key": NO_LINE, "outcome": "home"}
    diff = pl.DataFrame([{"cur": 7, "state": "changed", **key, "line": None, "odds": 1.85, "available": True},
                         {"cur": 8, "state": "same", **key, "outcome": "draw", "line": None, "odds": 3.4,
                          "available": True}])
    before = pl.DataFrame([{"cur": 7, "odds": 2.15, "available": True}, {"cur": 8, "odds": 3.4, "available": True}])
    moves = batch_moves(diff, before, minute(5))
    assert moves.select("outcome", "from_odds", "to_odds", "moved_at").rows() == [("home", 2.15, 1.85, minute(5))]


# --- dedup ---------------------------------------------------------------------------------


def observation(kind: str, key: str, holds: bool, size: float | None) -> pl.DataFrame:
    data = '{"from":2.15,"to":1.85,"pct":-14.0,"window_min":30.0,"betpawa":2.1}'
    return pl.DataFrame([{"kind": kind, "dedup_key": key, "sr_id": SR, "bookmaker": "sportybet",
                          "market": "1x2_ft", "line": None, "outcome": "home", "holds": holds, "size": size,
                          "data": data}])


def stored(*alerts: tuple[int, str, str, float | None, float, float | None]) -> pl.DataFrame:
    """(id, kind, key, size, created minute, cleared minute or None) rows of the alerts table."""
    rows = [{"id": i, "kind": k, "dedup_key": key, "sr_id": SR, "market": "1x2_ft", "line_key": NO_LINE,
             "size": size, "created_at": minute(c), "cleared_at": None if x is None else minute(x)}
            for i, k, key, size, c, x in alerts]
    return pl.DataFrame(rows, schema=EXISTING_SCHEMA)


def test_a_condition_that_persists_is_not_alerted_again():
    new, clear = reconcile(observation(MARGIN_GAP, "g", True, 5.0), stored((1, MARGIN_GAP, "g", 5.0, 0, None)),
                           T, minute(60))
    assert new.is_empty() and clear == []


def test_a_condition_that_clears_and_recurs_is_alerted_again():
    new, clear = reconcile(observation(MARGIN_GAP, "g", False, 1.0), stored((1, MARGIN_GAP, "g", 5.0, 0, None)),
                           T, minute(10))
    assert new.is_empty() and clear == [1]
    new, clear = reconcile(observation(MARGIN_GAP, "g", True, 4.0), stored((1, MARGIN_GAP, "g", 5.0, 0, 10)),
                           T, minute(20))
    assert new["dedup_key"].to_list() == ["g"] and clear == []


def test_a_gap_that_widens_by_another_threshold_supersedes_the_open_alert():
    existing = stored((1, MARGIN_GAP, "g", 5.0, 0, None))
    assert reconcile(observation(MARGIN_GAP, "g", True, 7.9), existing, T, minute(10))[0].is_empty()
    new, clear = reconcile(observation(MARGIN_GAP, "g", True, 8.0), existing, T, minute(10))
    assert new["size"].to_list() == [8.0] and clear == [1]


def test_steam_is_not_repeated_within_the_window_unless_it_turns_or_grows_by_another_threshold():
    existing = stored((1, STEAM, "s", -10.0, 0, None))
    assert reconcile(observation(STEAM, "s", True, -12.0), existing, T, minute(20))[0].is_empty()
    assert reconcile(observation(STEAM, "s", True, -18.0), existing, T, minute(20))[0].height == 1
    assert reconcile(observation(STEAM, "s", True, 9.0), existing, T, minute(20))[0].height == 1
    assert reconcile(observation(STEAM, "s", True, -12.0), existing, T, minute(31))[0].height == 1


def test_the_message_says_what_moved_with_the_numbers():
    new = observation(STEAM, "s", True, -14.0)
    events = pl.DataFrame({"sr_id": [SR], "home": ["Arsenal"], "away": ["Chelsea"]})
    text = describe(new, events)["message"][0]
    assert text == ("SportyBet shortened 1X2 - Full Time: 1 in Arsenal – Chelsea from 2.15 to 1.85 (-14.0%) "
                    "within 30 min; BetPawa still 2.10 — BetPawa now pays more.")
    assert describe(new, events.clear())["message"][0].startswith(
        "SportyBet shortened 1X2 - Full Time: 1 in sr:match:1"), "without the event's names, its id"


def test_thresholds_must_be_positive():
    with pytest.raises(ValueError, match="steam_pct"):
        AlertThresholds(steam_pct=0)
