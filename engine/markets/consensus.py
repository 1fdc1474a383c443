"""Cross-book consensus probabilities, each price's edge against them, and arbitrages.

The maths behind a "value and arbitrage" page, over the frames ``add_margins`` returns. Pure
polars, no I/O.

Consensus — per sr_id × market × line × outcome, the plain mean of the de-margined
probabilities (1 / fair_odds) of the books that quoted a complete set for that market and
line (fair odds not null: basis ``exclusive`` or ``double_cover``); ``books`` says how many.
Each complete book gets one vote: with two or three books a median is no more robust than a
mean, and weighting by margin would reward the books that quote least. De-margining first
matters: averaging raw 1/odds would make the consensus as high as the books' margins.

Residual outcomes (correct-score Other: "every score this book does not list") are different
events on books with different outcome sets, so they are pooled only among books with the
same set, and the consensus row names that set in ``outcome_set`` (null for every other
outcome, whose meaning does not depend on the book).

Edge — odds × consensus probability − 1: the expected return of one unit staked at that
price if the consensus is the truth. Every available price whose outcome has a consensus
gets one, also from a book whose own set was incomplete (its price is still real). The
consensus includes the book's own view, so with three books an edge reads "against the
market including this book".

Arbitrage — per sr_id × market × line, over a complete exclusive outcome set (the outcome
set of a book whose kind for the market is ``exclusive``): take the best available odds for
each outcome across the books that quote it (a residual outcome only from books with that
same set; ties go to the first book in ``BOOKS`` order). If Σ 1/best < 1, staking
100 × (1/best_i) / Σ on each outcome returns 100 / Σ whatever happens: profit % =
(1/Σ − 1) × 100. Double chance and other overlapping sets are left out: they are not a
partition, so covering them is not a hedge. When several outcome sets (correct score: BetPawa's
29 vs the others' 26) give an arbitrage, the most profitable is kept.
"""

from __future__ import annotations

import polars as pl

from engine.config import BOOKS
from engine.markets.margins import EXCLUSIVE, outcome_rules

CONSENSUS_KEYS = ("sr_id", "market", "line", "outcome", "outcome_set")
_EVENT_MARKET = ["sr_id", "market", "line"]
_STAKE = 100.0


def _offered(prices: pl.DataFrame) -> pl.DataFrame:
    """Available, valid prices of catalogue outcomes, with the book's outcome set and kind."""
    rules = outcome_rules().select("market", "bookmaker", "outcome", "kind", "outcome_set", "residual")
    odds = pl.col("odds").cast(pl.Float64)
    return prices.filter(
        pl.col("available").fill_null(False) & (odds.is_finite() & (odds > 1.0)).fill_null(False)
    ).join(rules, on=["market", "bookmaker", "outcome"], how="inner", maintain_order="left")


def _residual_set() -> pl.Expr:
    return pl.when(pl.col("residual")).then(pl.col("outcome_set")).otherwise(pl.lit(None, dtype=pl.String))


def consensus_probabilities(prices_with_fair: pl.DataFrame) -> pl.DataFrame:
    """Consensus fair probability (and odds) per sr_id, market, line and outcome.

    Columns: sr_id, market, line, outcome, outcome_set (null unless a residual outcome),
    consensus_prob, consensus_odds, books.
    """
    rules = outcome_rules().select("market", "bookmaker", "outcome", "outcome_set", "residual")
    pooled = (
        prices_with_fair.filter(pl.col("fair_odds").is_not_null())
        .join(rules, on=["market", "bookmaker", "outcome"], how="inner")
        .with_columns(outcome_set=_residual_set(), _prob=1.0 / pl.col("fair_odds"))
    )
    return (
        pooled.group_by(list(CONSENSUS_KEYS))
        .agg(consensus_prob=pl.col("_prob").mean(), books=pl.col("bookmaker").n_unique().cast(pl.Int64))
        .with_columns(consensus_odds=1.0 / pl.col("consensus_prob"))
        .select(*CONSENSUS_KEYS, "consensus_prob", "consensus_odds", "books")
        .sort(list(CONSENSUS_KEYS), nulls_last=False)
    )


def edges(prices_with_fair: pl.DataFrame, consensus: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every available price that has a consensus, with ``consensus_prob``, ``books`` and
    ``edge`` = odds × consensus_prob − 1 (a fraction: 0.05 is +5 %).

    ``consensus`` defaults to ``consensus_probabilities(prices_with_fair)``; pass one to
    measure prices against another frame's consensus.
    """
    if consensus is None:
        consensus = consensus_probabilities(prices_with_fair)
    priced = _offered(prices_with_fair).with_columns(outcome_set=_residual_set())
    joined = priced.join(
        consensus.select(*CONSENSUS_KEYS, "consensus_prob", "books"),
        on=list(CONSENSUS_KEYS), how="inner", nulls_equal=True, maintain_order="left",
    )
    return joined.select(
        *prices_with_fair.columns,
        "consensus_prob",
        "books",
        edge=pl.col("odds").cast(pl.Float64) * pl.col("consensus_prob") - 1.0,
    )


def arbitrages(prices: pl.DataFrame) -> pl.DataFrame:
    """One row per leg of each arbitrage: sr_id, market, line, outcome, bookmaker, odds,
    stake (of a total of 100), booksum (Σ 1/best odds, < 1) and profit_pct.

    ``prices`` needs sr_id, bookmaker, market, line, outcome, odds, available.
    """
    offered = _offered(prices).filter(pl.col("kind") == EXCLUSIVE)
    partitions = (
        outcome_rules()
        .filter(pl.col("kind") == EXCLUSIVE)
        .select("market", "outcome_set", "outcome", "residual", "n_outcomes")
        .unique(subset=["market", "outcome_set", "outcome"])
    )
    book_rank = {book: i for i, book in enumerate(BOOKS)}
    candidates = offered.select(*_EVENT_MARKET, "outcome_set").unique()
    legs = (
        candidates.join(partitions, on=["market", "outcome_set"], how="inner")
        .join(
            offered.select(
                *_EVENT_MARKET, "outcome", "bookmaker", pl.col("odds").cast(pl.Float64),
                book_set=pl.col("outcome_set"),
            ),
            on=[*_EVENT_MARKET, "outcome"], how="inner", nulls_equal=True,
        )
        .filter(~pl.col("residual") | (pl.col("book_set") == pl.col("outcome_set")))
        .with_columns(
            _rank=pl.col("bookmaker").replace_strict(book_rank, default=len(BOOKS), return_dtype=pl.Int64)
        )
        .sort(["odds", "_rank"], descending=[True, False])
        .group_by([*_EVENT_MARKET, "outcome_set", "outcome"], maintain_order=True)
        .first()
    )
    per_set = [*_EVENT_MARKET, "outcome_set"]
    legs = legs.with_columns(
        _covered=pl.len().over(per_set),
        booksum=(1.0 / pl.col("odds")).sum().over(per_set),
    ).filter((pl.col("_covered") == pl.col("n_outcomes")) & (pl.col("booksum") < 1.0))
    best_set = legs.group_by(_EVENT_MARKET).agg(pl.col("outcome_set").sort_by("booksum").first())
    return (
        legs.join(best_set, on=[*_EVENT_MARKET, "outcome_set"], how="semi", nulls_equal=True)
        .with_columns(
            stake=_STAKE / pl.col("odds") / pl.col("booksum"),
            profit_pct=(1.0 / pl.col("booksum") - 1.0) * 100.0,
        )
        .select(*_EVENT_MARKET, "outcome", "bookmaker", "odds", "stake", "booksum", "profit_pct")
        .sort(["profit_pct", "sr_id", "market", "line", "outcome"], descending=[True, False, False, False, False])
    )
