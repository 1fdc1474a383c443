"""Margins and fair odds: the numbers an analyst compares across books, and when there is none."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.markets.margins import (
    add_margins,
    devig,
    devig_power,
    devig_proportional,
    devig_shin,
    margin_pct,
    outcome_rule,
)
from engine.store.types import PRICE_SCHEMA


def quotes(sr_id: str, book: str, market: str, line: float | None, odds: dict[str, float],
           suspended: tuple[str, ...] = ()) -> list[dict]:
    return [
        {"sr_id": sr_id, "bookmaker": book, "market": market, "line": line, "outcome": o,
         "odds": x, "available": o not in suspended}
        for o, x in odds.items()
    ]


def frame(*groups: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([row for g in groups for row in g], schema=PRICE_SCHEMA)


def group(out: pl.DataFrame, sr_id: str, book: str, market: str, line: float | None) -> pl.DataFrame:
    line_match = pl.col("line").is_null() if line is None else pl.col("line") == line
    return out.filter((pl.col("sr_id") == sr_id) & (pl.col("bookmaker") == book)
                      & (pl.col("market") == market) & line_match)


# --- margin -----------------------------------------------------------------------------------


def test_margin_of_a_three_way_book():
    # 1/2.50 + 1/3.30 + 1/2.90 = 0.4 + 0.303030… + 0.344827… = 1.047858…
    assert margin_pct([2.50, 3.30, 2.90]) == pytest.approx((0.4 + 1 / 3.3 + 1 / 2.9 - 1) * 100)
    assert margin_pct([2.50, 3.30, 2.90]) == pytest.approx(4.7858, abs=1e-4)


def test_margin_of_a_two_way_book():
    # 2 × 1/1.90 = 1.0526… → 5.26 %
    assert margin_pct([1.90, 1.90]) == pytest.approx(5.2632, abs=1e-4)


def test_margin_refuses_what_is_not_a_price():
    with pytest.raises(ValueError):
        margin_pct([1.95])
    with pytest.raises(ValueError):
        margin_pct([1.0, 5.0])
    with pytest.raises(ValueError):
        margin_pct([2.0, float("nan")])


# --- de-vig methods ---------------------------------------------------------------------------


def test_symmetric_two_way_market_is_fair_at_evens():
    result = devig([1.90, 1.90])
    assert result.method == "power"
    assert result.fair_odds == pytest.approx((2.0, 2.0))


def test_power_method_on_a_hand_built_case():
    # π = (1/1.25, 1/(5/3)) = (0.8, 0.6), B = 1.4 (a 40 % margin). 0.8² + 0.6² = 0.64 + 0.36 = 1,
    # so k = 2 and the fair probabilities are 0.64 / 0.36: fair odds 1.5625 / 2.777….
    result = devig_power([1.25, 5 / 3])
    assert result.parameter == pytest.approx(2.0)
    assert result.probabilities == pytest.approx((0.64, 0.36))
    assert result.fair_odds == pytest.approx((1 / 0.64, 1 / 0.36))


def test_shin_recovers_the_insider_share_it_was_built_with():
    # Shin's bookmaker with true p = (0.5, 0.3, 0.2) and insider share z = 0.02 quotes
    # π_i = s_i · Σs, s_i = √(z·p_i + (1 − z)·p_i²):
    #   s = (√0.255, √0.0942, √0.0432) = (0.504975…, 0.306920…, 0.207846…), Σs = 1.019741…
    z, p = 0.02, (0.5, 0.3, 0.2)
    s = [math.sqrt(z * pi + (1 - z) * pi * pi) for pi in p]
    assert s == pytest.approx([math.sqrt(0.255), math.sqrt(0.0942), math.sqrt(0.0432)])
    odds = [1 / (si * sum(s)) for si in s]
    result = devig_shin(odds)
    assert result.method == "shin" and not result.fallback
    assert result.parameter == pytest.approx(0.02, abs=1e-9)
    assert result.probabilities == pytest.approx(p, abs=1e-9)


def test_shin_with_two_outcomes_is_the_additive_rule_which_is_why_two_way_uses_power():
    # π = (0.8, 0.285714…), B = 1.085714…: additive takes (B − 1)/2 = 0.042857… off each side.
    pi = (1 / 1.25, 1 / 3.5)
    cut = (sum(pi) - 1) / 2
    assert devig_shin([1.25, 3.5]).probabilities == pytest.approx((pi[0] - cut, pi[1] - cut))
    assert devig([1.25, 3.5]).method == "power"
    assert devig([2.50, 3.30, 2.90]).method == "shin"


def test_no_margin_to_remove_falls_back_to_proportional_and_says_so():
    # 1/2.10 + 1/2.10 = 0.952…: an arbitrage-like book, nothing for Shin or power to solve.
    for result in (devig([2.10, 2.10]), devig([3.2, 3.2, 3.2])):
        assert result.method == "proportional" and result.fallback
        assert sum(result.probabilities) == pytest.approx(1.0)
    assert devig_proportional([2.10, 2.10]).probabilities == pytest.approx((0.5, 0.5))


@settings(max_examples=150, deadline=None)
@given(
    weights=st.lists(st.floats(0.05, 1.0), min_size=2, max_size=30),
    margin=st.floats(0.005, 0.40),
)
def test_devig_converges_for_any_book_up_to_a_40_percent_margin(weights, margin):
    true = np.array(weights) / sum(weights)
    odds = [max(1.0 + 1e-6, 1 / (p * (1 + margin))) for p in true]
    result = devig(odds)
    assert not result.fallback
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-9)
    assert all(f > o for f, o in zip(result.fair_odds, odds, strict=True))


def test_devig_converges_against_an_extreme_favourite():
    for odds in ([1.01, 15.0, 34.0], [1.02, 12.0], [1.001, 81.0]):
        result = devig(odds)
        assert not result.fallback
        assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-9)
        assert all(f > o for f, o in zip(result.fair_odds, odds, strict=True))


# --- the outcome-set rule on a frame ----------------------------------------------------------


def test_every_group_gets_its_own_margin_and_fair_odds_with_null_lines_grouped_together():
    prices = frame(
        quotes("1", "betpawa", "1x2_ft", None, {"home": 2.50, "draw": 3.30, "away": 2.90}),
        quotes("1", "sportybet", "1x2_ft", None, {"home": 2.45, "draw": 3.40, "away": 3.00}),
        quotes("2", "betpawa", "1x2_ft", None, {"home": 1.50, "draw": 4.20, "away": 6.50}),
        quotes("1", "betpawa", "over_under_ft", 2.5, {"over": 1.85, "under": 1.95}),
        quotes("1", "betpawa", "over_under_ft", 3.5, {"over": 3.10, "under": 1.36}),
        quotes("1", "bet9ja", "asian_handicap_ft", -0.5, {"home": 1.90, "away": 1.90}),
        quotes("1", "bet9ja", "correct_score_1h", None, {"0_0": 3.2, "1_0": 4.1, "0_1": 4.6, "1_1": 6.0}),
    ).with_columns(note=pl.int_range(pl.len()).cast(pl.String))
    shuffled = prices.sample(fraction=1.0, shuffle=True, seed=3)
    out = add_margins(shuffled)

    assert out.columns == [*shuffled.columns, "margin_pct", "fair_odds", "margin_basis", "devig_method"]
    assert out["note"].to_list() == shuffled["note"].to_list()
    for key in [("1", "betpawa", "1x2_ft", None), ("1", "sportybet", "1x2_ft", None),
                ("2", "betpawa", "1x2_ft", None), ("1", "betpawa", "over_under_ft", 2.5),
                ("1", "betpawa", "over_under_ft", 3.5), ("1", "bet9ja", "asian_handicap_ft", -0.5)]:
        g = group(out, *key).sort("outcome")
        odds = g["odds"].to_list()
        assert g["margin_pct"].to_list() == [round(margin_pct(odds), 2)] * len(odds)
        assert g["fair_odds"].to_list() == pytest.approx(list(devig(odds).fair_odds), rel=1e-9)
        assert set(g["margin_basis"]) == {"exclusive"}
        assert set(g["devig_method"]) == {"power" if len(odds) == 2 else "shin"}
    cs = group(out, "1", "bet9ja", "correct_score_1h", None)
    assert set(cs["margin_basis"]) == {"partial"} and cs["margin_pct"].null_count() == 4


def test_double_chance_margin_is_on_the_1x2_scale_and_its_fair_odds_agree_with_the_1x2():
    # One view of the match (p1, pX, p2) = (0.45, 0.28, 0.27), priced with a 6 % margin on both
    # markets and rounded to cents like a real book.
    p1, px, p2 = 0.45, 0.28, 0.27
    one_x_two = {"home": 1 / (p1 * 1.06), "draw": 1 / (px * 1.06), "away": 1 / (p2 * 1.06)}
    double = {"home_draw": 1 / ((p1 + px) * 1.06), "draw_away": 1 / ((px + p2) * 1.06),
              "home_away": 1 / ((p1 + p2) * 1.06)}
    one_x_two = {k: round(v, 2) for k, v in one_x_two.items()}
    double = {k: round(v, 2) for k, v in double.items()}
    out = add_margins(frame(quotes("9", "sportybet", "1x2_ft", None, one_x_two),
                            quotes("9", "sportybet", "double_chance_ft", None, double)))
    result = group(out, "9", "sportybet", "1x2_ft", None)
    dc = group(out, "9", "sportybet", "double_chance_ft", None)

    naive = margin_pct(list(double.values()))
    assert naive > 100  # what the earlier tool showed
    assert set(dc["margin_basis"]) == {"double_cover"}
    assert dc["margin_pct"][0] == pytest.approx(round((sum(1 / x for x in double.values()) / 2 - 1) * 100, 2))
    assert abs(dc["margin_pct"][0] - result["margin_pct"][0]) < 1.0

    fair = dict(zip(result["outcome"], 1 / result["fair_odds"], strict=True))
    fair_dc = dict(zip(dc["outcome"], 1 / dc["fair_odds"], strict=True))
    assert fair_dc["home_draw"] == pytest.approx(fair["home"] + fair["draw"], abs=0.005)
    assert fair_dc["draw_away"] == pytest.approx(fair["draw"] + fair["away"], abs=0.005)
    assert fair_dc["home_away"] == pytest.approx(fair["home"] + fair["away"], abs=0.005)
    assert sum(fair_dc.values()) == pytest.approx(2.0)
    assert all(f > o for f, o in zip(dc["fair_odds"], dc["odds"], strict=True))


def test_double_chance_combos_are_halved_per_branch():
    # A view of result × BTTS: yes (1, X, 2) = (0.25, 0.12, 0.15), no = (0.20, 0.16, 0.12).
    # DC & BTTS covers each cell twice: 1X & yes = 0.37, X2 & yes = 0.27, 12 & yes = 0.40,
    # 1X & no = 0.36, X2 & no = 0.28, 12 & no = 0.32 (sum 2.00), priced with a 7 % margin.
    view = {"1x_yes": 0.37, "x2_yes": 0.27, "12_yes": 0.40, "1x_no": 0.36, "x2_no": 0.28, "12_no": 0.32}
    odds = {k: round(1 / (q * 1.07), 2) for k, q in view.items()}
    out = add_margins(frame(quotes("5", "betpawa", "double_chance_btts_ft", None, odds)))
    assert set(out["margin_basis"]) == {"double_cover"}
    assert margin_pct(list(odds.values())) == pytest.approx(114, abs=1)  # the naive reading
    assert out["margin_pct"][0] == pytest.approx(round((sum(1 / x for x in odds.values()) / 2 - 1) * 100, 2))
    assert out["margin_pct"][0] == pytest.approx(7.0, abs=0.5)
    fair = dict(zip(out["outcome"], 1 / out["fair_odds"], strict=True))
    assert fair == pytest.approx(view, abs=0.01)
    assert all(f > o for f, o in zip(out["fair_odds"], out["odds"], strict=True))


@pytest.mark.parametrize(
    ("book", "market", "odds", "suspended", "basis"),
    [
        ("betpawa", "1x2_ft", {"home": 2.5, "away": 2.9}, (), "partial"),
        ("betpawa", "1x2_ft", {"home": 2.5, "draw": 3.3, "away": 2.9}, ("draw",), "suspended"),
        ("bet9ja", "exact_goals_1h", {"0": 3.1, "1": 2.4, "2": 4.0, "3+": 7.5}, (), "partial"),
        ("bet9ja", "home_multigoals_ft", {"1_2": 1.6, "1_3": 1.4, "2_3": 2.8}, (), "overlap"),
        ("sportybet", "correct_score_1h", {"0_0": 3.2, "1_0": 4.1, "0_1": 4.6, "1_1": 6.0}, (), "partial"),
        ("sportybet", "player_to_score", {"yes": 2.2, "no": 1.6}, (), "unknown_market"),
        ("bet9ja", "1x2_ft", {"home": 2.5, "draw": 3.3, "away": 2.9, "other": 9.0}, (), "unknown_outcome"),
        ("betpawa", "btts_ft", {"yes": 1.0, "no": 8.0}, (), "invalid_odds"),
    ],
)
def test_sets_without_a_comparable_margin_are_null_and_say_why(book, market, odds, suspended, basis):
    out = add_margins(frame(quotes("3", book, market, None, odds, suspended)))
    assert set(out["margin_basis"]) == {basis}
    for column in ("margin_pct", "fair_odds", "devig_method"):
        assert out[column].null_count() == len(odds)


def test_the_same_market_complete_on_another_book_has_a_margin():
    # Exact goals 1H is partial on Bet9ja only: SportyBet's 0/1/2/3+ is a full partition.
    odds = {"0": 3.1, "1": 2.4, "2": 4.0, "3+": 7.5}
    out = add_margins(frame(quotes("3", "sportybet", "exact_goals_1h", None, odds)))
    assert set(out["margin_basis"]) == {"exclusive"}
    assert out["margin_pct"][0] == round(margin_pct(list(odds.values())), 2)


def test_a_correct_score_without_other_has_no_margin_but_with_it_does():
    scores = outcome_rule("correct_score_ft", "sportybet").outcomes
    assert len(scores) == 26 and "other" in scores
    odds = {s: 30.0 for s in scores}
    odds["other"] = 1.5
    complete = add_margins(frame(quotes("4", "sportybet", "correct_score_ft", None, odds)))
    assert set(complete["margin_basis"]) == {"exclusive"}
    assert complete["margin_pct"][0] == round((25 / 30 + 1 / 1.5 - 1) * 100, 2)
    del odds["other"]
    missing = add_margins(frame(quotes("4", "sportybet", "correct_score_ft", None, odds)))
    assert set(missing["margin_basis"]) == {"partial"}
    assert missing["margin_pct"].null_count() == 25


def test_a_duplicated_outcome_never_doubles_the_margin():
    rows = quotes("6", "betpawa", "btts_ft", None, {"yes": 1.8, "no": 2.0})
    out = add_margins(frame(rows, rows[:1]))
    assert set(out["margin_basis"]) == {"duplicate_outcome"}
    assert out["margin_pct"].null_count() == 3


def test_running_twice_gives_the_same_columns_and_values():
    prices = frame(quotes("1", "betpawa", "1x2_ft", None, {"home": 2.5, "draw": 3.3, "away": 2.9}))
    once = add_margins(prices)
    assert add_margins(once).equals(once)


def test_an_empty_frame_gets_the_columns():
    out = add_margins(pl.DataFrame(schema=PRICE_SCHEMA))
    assert out.height == 0
    assert out.schema["margin_pct"] == pl.Float64 and out.schema["margin_basis"] == pl.String


def _big_frame(rows_wanted: int, seed: int = 11) -> pl.DataFrame:
    """Realistic groups (1X2, DC, BTTS, five O/U lines, four AH lines, each book's own correct
    score set) for three books, random true probabilities and margins from 2 % to 40 %."""
    rng = np.random.default_rng(seed)
    book_col, market, line, outcome, size, cover = [], [], [], [], [], []
    for book in ("betpawa", "sportybet", "bet9ja"):
        layout: list[tuple[str, float | None, tuple[str, ...]]] = [
            ("1x2_ft", None, ("home", "draw", "away")),
            ("double_chance_ft", None, ("home_draw", "draw_away", "home_away")),
            ("btts_ft", None, ("yes", "no")),
            *[("over_under_ft", ln, ("over", "under")) for ln in (0.5, 1.5, 2.5, 3.5, 4.5)],
            *[("asian_handicap_ft", ln, ("home", "away")) for ln in (-1.5, -0.5, 0.5, 1.25)],
            ("correct_score_ft", None, outcome_rule("correct_score_ft", book).outcomes),
        ]
        for m, ln, outs in layout:
            book_col += [book] * len(outs)
            market += [m] * len(outs)
            line += [ln] * len(outs)
            outcome += list(outs)
            size.append(len(outs))
            cover += [2 if m == "double_chance_ft" else 1] * len(outs)
    events = -(-rows_wanted // len(market))
    n = events * len(market)
    group_id = np.repeat(np.arange(events * len(size)), np.tile(size, events))
    raw = rng.gamma(3.0, size=n)  # normalised per group: a Dirichlet draw of true probabilities
    true = raw / np.bincount(group_id, weights=raw)[group_id]
    margin = 1.0 + rng.uniform(0.02, 0.40, size=events * len(size))[group_id]
    odds = np.maximum(1.0 / (true * np.tile(cover, events) * margin), 1.0005)
    return pl.DataFrame({
        "sr_id": np.repeat(np.arange(events).astype(str), len(market)),
        "bookmaker": np.tile(book_col, events),
        "market": np.tile(market, events),
        "line": pl.Series(line * events, dtype=pl.Float64),
        "outcome": np.tile(outcome, events),
        "odds": odds,
        "available": rng.random(n) > 0.002,
    })


def test_three_hundred_thousand_prices_match_the_scalar_maths():
    prices = _big_frame(300_000)
    assert prices.height >= 300_000
    out = add_margins(prices)
    assert out.height == prices.height
    assert out["margin_basis"].is_in(["exclusive", "double_cover", "suspended"]).all()
    assert (out["margin_basis"] == "suspended").sum() > 0

    priced = out.filter(pl.col("margin_basis") == "exclusive")
    keys = priced.select("sr_id", "bookmaker", "market", "line").unique(maintain_order=True)
    for key in keys.sample(150, seed=5).iter_rows():
        g = group(priced, *key)
        odds = g["odds"].to_list()
        assert g["margin_pct"].to_list() == [round(margin_pct(odds), 2)] * len(odds)
        assert g["fair_odds"].to_list() == pytest.approx(list(devig(odds).fair_odds), rel=1e-8)
    dc = out.filter(pl.col("margin_basis") == "double_cover")
    for key in dc.select("sr_id", "bookmaker", "market", "line").unique().sample(30, seed=5).iter_rows():
        g = group(dc, *key)
        assert g["margin_pct"][0] == round(margin_pct(g["odds"].to_list(), covers=2), 2)
        assert (1 / g["fair_odds"]).sum() == pytest.approx(2.0)
