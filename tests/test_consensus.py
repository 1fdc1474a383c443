"""Cross-book consensus, edges and arbitrages: what a value-and-arbitrage page would show."""

from __future__ import annotations

import polars as pl
import pytest

from engine.markets.consensus import arbitrages, consensus_probabilities, edges
from engine.markets.margins import add_margins, outcome_rule
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


def row(df: pl.DataFrame, **match) -> dict:
    hit = df.filter(*[pl.col(k).is_null() if v is None else pl.col(k) == v for k, v in match.items()])
    assert hit.height == 1, hit
    return hit.row(0, named=True)


# --- consensus and edges ----------------------------------------------------------------------


def test_consensus_is_the_mean_of_the_complete_books_and_edges_measure_every_live_price():
    # BetPawa 1.25 / 1.666…: π = (0.8, 0.6), and 0.8² + 0.6² = 1 → fair (0.64, 0.36).
    # SportyBet 1.90 / 1.90 → fair (0.50, 0.50). Bet9ja quotes home only: no complete set.
    # Consensus home = (0.64 + 0.50) / 2 = 0.57, away = (0.36 + 0.50) / 2 = 0.43, from 2 books.
    prices = frame(
        quotes("1", "betpawa", "asian_handicap_ft", -0.5, {"home": 1.25, "away": 5 / 3}),
        quotes("1", "sportybet", "asian_handicap_ft", -0.5, {"home": 1.90, "away": 1.90}),
        quotes("1", "bet9ja", "asian_handicap_ft", -0.5, {"home": 1.95}),
        quotes("1", "bet9ja", "1x2_ft", None, {"home": 2.5, "draw": 3.3, "away": 2.9}, suspended=("away",)),
    )
    priced = add_margins(prices)
    consensus = consensus_probabilities(priced)

    home = row(consensus, market="asian_handicap_ft", line=-0.5, outcome="home")
    away = row(consensus, market="asian_handicap_ft", line=-0.5, outcome="away")
    assert home["consensus_prob"] == pytest.approx(0.57)
    assert away["consensus_prob"] == pytest.approx(0.43)
    assert home["books"] == away["books"] == 2
    assert home["consensus_odds"] == pytest.approx(1 / 0.57)
    assert consensus.filter(pl.col("market") == "1x2_ft").is_empty()  # suspended: no complete set

    edge = edges(priced)
    # Bet9ja's lone home price still gets an edge: 1.95 × 0.57 − 1 = 0.1115.
    lone = row(edge, bookmaker="bet9ja", outcome="home", market="asian_handicap_ft")
    assert lone["edge"] == pytest.approx(0.1115)
    assert row(edge, bookmaker="betpawa", outcome="home")["edge"] == pytest.approx(1.25 * 0.57 - 1)  # −0.2875
    assert row(edge, bookmaker="sportybet", outcome="away")["edge"] == pytest.approx(1.90 * 0.43 - 1)  # −0.183
    assert edge.height == 5
    assert set(edge.columns) >= {*priced.columns, "consensus_prob", "books", "edge"}


def _correct_score(book: str, score_odds: float, other_odds: float) -> dict[str, float]:
    odds = {s: score_odds for s in outcome_rule("correct_score_ft", book).outcomes}
    odds["other"] = other_odds
    return odds


def test_correct_score_other_is_only_pooled_between_books_that_mean_the_same_by_it():
    # BetPawa lists 0-5, 0-6, 1-5, 5-0, 5-1, 6-0, SportyBet lists 3-4, 4-3, 4-4: each one's
    # "Other" is a different event, while 0-0 is the same event on both.
    priced = add_margins(frame(
        quotes("7", "betpawa", "correct_score_ft", None, _correct_score("betpawa", 40.0, 3.0)),
        quotes("7", "sportybet", "correct_score_ft", None, _correct_score("sportybet", 40.0, 2.5)),
    ))
    assert set(priced["margin_basis"]) == {"exclusive"}
    consensus = consensus_probabilities(priced)
    fair = {(r["bookmaker"], r["outcome"]): 1 / r["fair_odds"] for r in priced.iter_rows(named=True)}

    nil_nil = row(consensus, outcome="0_0")
    assert nil_nil["books"] == 2 and nil_nil["outcome_set"] is None
    assert nil_nil["consensus_prob"] == pytest.approx((fair["betpawa", "0_0"] + fair["sportybet", "0_0"]) / 2)
    assert row(consensus, outcome="0_5")["books"] == 1

    others = consensus.filter(pl.col("outcome") == "other")
    assert others.height == 2 and others["books"].to_list() == [1, 1]
    own = sorted([fair["betpawa", "other"], fair["sportybet", "other"]])
    assert sorted(others["consensus_prob"]) == pytest.approx(own)

    edge = edges(priced)
    for book, quoted in (("betpawa", 3.0), ("sportybet", 2.5)):
        expected = quoted * fair[book, "other"] - 1
        assert row(edge, bookmaker=book, outcome="other")["edge"] == pytest.approx(expected)


# --- arbitrage --------------------------------------------------------------------------------


def test_best_prices_across_books_that_cover_every_result_are_an_arbitrage():
    # Best home 2.10 (BetPawa), best away 2.10 (SportyBet): Σ 1/best = 2/2.1 = 0.952381,
    # so 50 on each returns 105 whatever happens: +5 %.
    arbs = arbitrages(frame(
        quotes("1", "betpawa", "asian_handicap_ft", -0.5, {"home": 2.10, "away": 1.75}),
        quotes("1", "sportybet", "asian_handicap_ft", -0.5, {"home": 1.70, "away": 2.10}),
    ))
    assert arbs.height == 2
    assert row(arbs, outcome="home")["bookmaker"] == "betpawa"
    assert row(arbs, outcome="away")["bookmaker"] == "sportybet"
    assert arbs["booksum"].to_list() == pytest.approx([2 / 2.1] * 2)
    assert arbs["profit_pct"].to_list() == pytest.approx([5.0, 5.0])
    assert arbs["stake"].to_list() == pytest.approx([50.0, 50.0])
    assert arbs["line"].to_list() == [-0.5, -0.5]


def test_a_near_miss_is_not_an_arbitrage():
    # Best home 2.00, best away 1/0.501 = 1.996…: Σ = 0.5 + 0.501 = 1.001 → no free money.
    assert arbitrages(frame(
        quotes("1", "betpawa", "over_under_ft", 2.5, {"over": 2.00, "under": 1.80}),
        quotes("1", "bet9ja", "over_under_ft", 2.5, {"over": 1.90, "under": 1 / 0.501}),
    )).is_empty()


def test_three_way_arbitrage_splits_the_stake_so_every_result_pays_the_same():
    # Best 3.0 (home; BetPawa and Bet9ja tie, BetPawa listed first) / 4.0 / 3.0:
    # Σ = 1/3 + 1/4 + 1/3 = 0.916…, return 100 / 0.916… = 109.09 → +9.09 %;
    # stakes 36.36 / 27.27 / 36.36.
    arbs = arbitrages(frame(
        quotes("2", "bet9ja", "1x2_ft", None, {"home": 3.0, "draw": 3.5, "away": 3.0}),
        quotes("2", "betpawa", "1x2_ft", None, {"home": 3.0, "draw": 3.2, "away": 2.4}),
        quotes("2", "sportybet", "1x2_ft", None, {"home": 2.6, "draw": 4.0, "away": 2.8}),
    ))
    booksum = 1 / 3 + 1 / 4 + 1 / 3
    assert arbs.height == 3
    assert row(arbs, outcome="home")["bookmaker"] == "betpawa"
    assert row(arbs, outcome="draw")["bookmaker"] == "sportybet"
    assert row(arbs, outcome="away")["bookmaker"] == "bet9ja"
    assert arbs["profit_pct"][0] == pytest.approx((1 / booksum - 1) * 100)  # 9.0909
    assert row(arbs, outcome="draw")["stake"] == pytest.approx(100 * 0.25 / booksum)  # 27.27
    assert sum(arbs["stake"]) == pytest.approx(100.0)
    assert (arbs["stake"] * arbs["odds"]).to_list() == pytest.approx([100 / booksum] * 3)


def test_no_arbitrage_without_every_outcome_or_over_overlapping_outcomes():
    prices = frame(
        # the draw is suspended everywhere: home/away alone cover nothing
        quotes("3", "betpawa", "1x2_ft", None, {"home": 3.0, "draw": 3.2, "away": 3.0}, suspended=("draw",)),
        quotes("3", "sportybet", "1x2_ft", None, {"home": 3.1, "away": 3.1}),
        # 3 × 1/3.1 = 0.97, but double chance covers each result twice: not a hedge
        quotes("3", "bet9ja", "double_chance_ft", None, {"home_draw": 3.1, "draw_away": 3.1, "home_away": 3.1}),
    )
    assert arbitrages(prices).is_empty()


def test_an_arbitrage_never_pairs_one_books_other_with_another_books_score_list():
    # BetPawa at a 5 % margin on p = 0.03 per score, Other p = 0.16: Σ = 1.05, no arbitrage.
    # SportyBet's Other at 500 looks cheap against BetPawa's list, but it is a different event;
    # on SportyBet's own list its 3-4/4-3/4-4 at 2.0 make Σ > 1.
    betpawa = _correct_score("betpawa", 1 / (0.03 * 1.05), 1 / (0.16 * 1.05))
    sportybet = _correct_score("sportybet", 2.0, 500.0)
    prices = frame(quotes("8", "betpawa", "correct_score_ft", None, betpawa),
                   quotes("8", "sportybet", "correct_score_ft", None, sportybet))
    assert arbitrages(prices).is_empty()

    # BetPawa's own Other at 500 is the same mistake on a list it belongs to: a real arbitrage.
    betpawa["other"] = 500.0
    arbs = arbitrages(frame(quotes("8", "betpawa", "correct_score_ft", None, betpawa),
                            quotes("8", "sportybet", "correct_score_ft", None, sportybet)))
    assert arbs.height == 29
    assert row(arbs, outcome="other")["bookmaker"] == "betpawa"
    assert arbs["booksum"][0] == pytest.approx(28 * 0.03 * 1.05 + 1 / 500)  # 0.884
