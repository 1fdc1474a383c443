"""Bookmaker margin, fair (de-margined) odds, and the written rule for when either exists.

The earlier tool applied Σ 1/odds − 1 to every outcome list it had, which made double chance
show ~110 % and partially mapped markets show margins that could even be negative
(market-mapping.md §4.1, §5 items 17–19). A margin is only meaningful over a set of outcomes
that covers every result, so this module decides per book and market what the set is first.

The rule (per sr_id × book × market × line, "the group")
=========================================================

The book's outcome set for a market is what the catalogue says that book can express
(``Market.outcome_names(book)``). Its *kind* is static per market and book:

* ``exclusive`` — mutually exclusive and exhaustive: 1X2, O/U, Asian and 3-way handicaps, draw
  no bet, HT/FT, correct score FT (with Other), exact goals, multigoals, the 1X2/O-U/BTTS
  combos… Margin = (Σ 1/odds − 1) × 100, fair odds by de-vig (below). Whole and quarter lines
  and draw no bet can void (push): the stake comes back, so the quoted sides partition the
  non-void results and margin and fair odds are conditional on no void — what a bettor is
  paid on.
* ``double_cover`` — every result lies in exactly two outcomes: double chance FT/1H/2H, and
  within each BTTS or O/U branch of double chance & BTTS / double chance & O/U. Σ 1/odds is
  about 2 × (1 + margin), so margin = (Σ 1/odds ÷ 2 − 1) × 100, on the same scale as the
  1X2 margin. Fair odds: the implied probabilities of the underlying results are recovered
  from the set itself (1X leaves out 2, so r₂ = Σ_branch/2 − 1/odds(1X)), de-vigged with
  Shin like any partition of three or more, and summed back: fair(1X) = 1 / (p₁ + p_X).
  Prices too inconsistent for that (some r ≤ 0) fall back to proportional, 1/odds ÷ (Σ/2).
  Deriving from the same book's 1X2 instead was rejected: it needs a second market in the
  frame, and it would copy the 1X2's view into the double chance, hiding how the book
  actually priced it.
* ``overlap`` — outcomes overlap irregularly and do not cover every result (Bet9ja team
  multigoals HO12/HO13/HO23 leave out 0 and 4+; the routing-only ``haou_combined``): no
  margin, no fair odds.
* ``partial`` — the book's set is never exhaustive: correct score 1H/2H (only 0-0, 1-0, 0-1,
  1-1 are mapped, no Other), the placeholder corners/bookings exact markets, and Bet9ja exact
  goals 1H (its last bucket ``3`` is mapped to 3+ unconfirmed; if it means exactly 3 the set
  misses 4+, reference §2.5: "only 0 and 1 are compared").

``margin_basis`` of a group is the first of these that applies; only the last two carry a
margin and fair odds:

``unknown_market`` (not in the catalogue for that book) · ``overlap`` · ``partial`` (kind) ·
``unknown_outcome`` (an outcome the book cannot express) · ``duplicate_outcome`` ·
``partial`` (an outcome of the book's set is missing) · ``suspended`` (all present, one or
more not available) · ``invalid_odds`` (null, non-finite or ≤ 1) · ``exclusive`` ·
``double_cover``.

Suspended outcomes (§5 item 19): counting a suspended price gives a margin on a price the
book does not stand behind, leaving it out gives an incomplete set; either way the number is
not comparable across books, so it is null. Call ``add_margins`` before dropping unavailable
rows, or a suspended outcome reads as missing (still null, basis ``partial``).

De-vig methods
==============

* Three or more outcomes: **Shin** (1993). The book is modelled as pricing against a
  share z of insiders, which puts proportionally more margin on longshots — the
  favourite–longshot bias seen in football odds; Štrumbelj (2014) found Shin's probabilities
  better calibrated than plain normalisation for football. Fair p_i(z) =
  (√(z² + 4(1 − z)·π_i²/B) − z) / (2(1 − z)), π_i = 1/odds_i, B = Σπ; z solves Σp = 1.
* Two outcomes: **power**, p_i = π_i^k with k solving Σp = 1. With two outcomes Shin's model
  is exactly the additive rule — the same absolute cut from both sides (Clarke, Kovalchik &
  Ingram 2017 prove it; a test here checks it) — so "Shin with n = 2" adds nothing. Power
  cuts each outcome by the relative amount 1 − π_i^(k−1): next to nothing from a heavy
  favourite, most from a longshot, which is the favourite–longshot bias; it never leaves
  (0, 1), every fair price lies above the quoted one, and it is the method those authors
  recommend (after Vovk & Zhdanov 2009). Know its consequence: against an extreme favourite
  the longshot's fair odds sit far above the quote (1.02/12.0 → 1.03/35.6, where additive
  gives 1.05/19.4). A symmetric market de-vigs to 2.00/2.00 under any of them.
* Both parameters are found by bisection on exact brackets — z ∈ (0, 1) because Σp(0) = √B > 1
  and Σp(1⁻) = Σπ²/B < 1; k ∈ [1, ln n / −ln π_max] because Σπ¹ = B > 1 and n·π_max^k ≤ 1
  there — for every group at once (numpy, one pass per step over all rows), so the solver
  converges for any margin > 0 with odds > 1. A group with B ≤ 1 (no margin to remove) or
  that does not converge falls back to **proportional** (p = π/B), reported as
  ``devig_method = "proportional"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import polars as pl

from engine.markets.catalogue import BOOK_COLUMNS, load_catalogue

Kind = Literal["exclusive", "double_cover", "overlap", "partial"]
Method = Literal["shin", "power", "proportional"]

EXCLUSIVE: Kind = "exclusive"
DOUBLE_COVER: Kind = "double_cover"
OVERLAP: Kind = "overlap"
PARTIAL: Kind = "partial"
SUSPENDED = "suspended"
INVALID_ODDS = "invalid_odds"
DUPLICATE_OUTCOME = "duplicate_outcome"
UNKNOWN_MARKET = "unknown_market"
UNKNOWN_OUTCOME = "unknown_outcome"

GROUP_KEYS = ("sr_id", "bookmaker", "market", "line")
OUTPUT_COLUMNS = ("margin_pct", "fair_odds", "margin_basis", "devig_method")

_DOUBLE_CHANCE = ("double_chance_ft", "double_chance_1h", "double_chance_2h")
_DOUBLE_CHANCE_COMBOS = (
    "double_chance_btts_ft",
    "double_chance_btts_1h",
    "double_chance_btts_2h",
    "double_chance_over_under_ft",
)
_OVERLAP: dict[tuple[str, str | None], str] = {
    ("haou_combined", None): "home and away team totals are two markets in one key family",
    ("home_multigoals_ft", "bet9ja"): "ranges 1-2/1-3/2-3 overlap and leave out 0 and 4+",
    ("away_multigoals_ft", "bet9ja"): "ranges 1-2/1-3/2-3 overlap and leave out 0 and 4+",
}
_PARTIAL: dict[tuple[str, str | None], str] = {
    ("correct_score_1h", None): "only 0-0, 1-0, 0-1, 1-1 are mapped; no Other",
    ("correct_score_2h", None): "only 0-0, 1-0, 0-1, 1-1 are mapped; no Other",
    ("corners_exact_ft", None): "placeholder outcome table",
    ("corners_exact_1h", None): "placeholder outcome table",
    ("bookings_exact_ft", None): "placeholder outcome table",
    ("bookings_exact_1h", None): "placeholder outcome table",
    ("exact_goals_1h", "bet9ja"): "last bucket '3' is not confirmed to mean 3+",
}
#: Outcomes defined as "everything the book does not list": they mean different events on
#: books with different outcome sets (BetPawa's correct-score Other excludes 0-5, SportyBet's
#: includes it), so they are only ever compared between books with the same set.
RESIDUAL_OUTCOMES: frozenset[tuple[str, str]] = frozenset(
    {("correct_score_ft", "other"), ("multiscores_ft", "other_home"), ("multiscores_ft", "other_away")}
)

_BISECTION_STEPS = 64
_SUM_TOLERANCE = 1e-9
_BRACKET_WIDTH = 1e-13


#: (row implied probabilities, row group ids, number of groups) -> (parameter per group,
#: fair probability per row, converged per group)
_Solver = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class OutcomeRule:
    """What a book's outcome list for one market is, and therefore what its margin means."""

    market: str
    book: str
    kind: Kind
    outcomes: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class Devig:
    """Fair probabilities of one outcome set, in the order given, and how they were found."""

    probabilities: tuple[float, ...]
    method: Method
    parameter: float | None  # Shin z or power k; None for proportional
    fallback: bool = False  # the chosen method had no solution, proportional was used

    @property
    def fair_odds(self) -> tuple[float, ...]:
        return tuple(1.0 / p for p in self.probabilities)


# --- scalar maths ---------------------------------------------------------------------------


def _implied(odds: Sequence[float]) -> np.ndarray:
    arr = np.asarray(odds, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError("a margin needs at least two outcomes")
    if not (np.isfinite(arr).all() and (arr > 1.0).all()):
        raise ValueError(f"decimal odds must be finite and above 1.0: {list(odds)}")
    return 1.0 / arr


def margin_pct(odds: Sequence[float], covers: int = 1) -> float:
    """(Σ 1/odds ÷ covers − 1) × 100 over one book's complete outcome set.

    ``covers`` is how many outcomes each result lies in: 1 for a partition, 2 for double
    chance, whose raw sum would otherwise read ~100 points too high.
    """
    return float((_implied(odds).sum() / covers - 1.0) * 100.0)


def devig_proportional(odds: Sequence[float]) -> Devig:
    pi = _implied(odds)
    return Devig(tuple((pi / pi.sum()).tolist()), "proportional", None)


def _devig_one(odds: Sequence[float], method: Method, solver: _Solver) -> Devig:
    pi = _implied(odds)
    parameter, p, ok = solver(pi, np.zeros(pi.size, dtype=np.int64), 1)
    if not ok[0]:
        return Devig(tuple((pi / pi.sum()).tolist()), "proportional", None, fallback=True)
    return Devig(tuple(p.tolist()), method, float(parameter[0]))


def devig_shin(odds: Sequence[float]) -> Devig:
    return _devig_one(odds, "shin", _solve_shin)


def devig_power(odds: Sequence[float]) -> Devig:
    return _devig_one(odds, "power", _solve_power)


def devig(odds: Sequence[float]) -> Devig:
    """The project's de-vig: power for two outcomes, Shin for three or more."""
    return devig_power(odds) if len(odds) == 2 else devig_shin(odds)


# --- vectorised solvers: one bisection over every group at once ------------------------------


def _bisect(total_at: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per group, the x in [lo, hi] where ``total_at(x)`` (decreasing) crosses 1."""
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = total_at(mid) > 1.0
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
        if hi.size == 0 or float(np.max(hi - lo)) <= _BRACKET_WIDTH:
            break
    return 0.5 * (lo + hi)


def _all_positive(pi: np.ndarray, gid: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(gid, weights=(pi <= 0.0).astype(np.float64), minlength=n_groups) == 0


def _shin_probabilities(scale: np.ndarray, z: np.ndarray) -> np.ndarray:
    return (np.sqrt(z * z + (1.0 - z) * scale) - z) / (2.0 * (1.0 - z))


def _solve_shin(pi: np.ndarray, gid: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shin's z per group, the rows' fair probabilities, and whether each group converged."""
    booksum = np.bincount(gid, weights=pi, minlength=n_groups)
    positive = _all_positive(pi, gid, n_groups)
    scale = 4.0 * pi * pi / booksum[gid]

    def total_at(z: np.ndarray) -> np.ndarray:
        return np.bincount(gid, weights=_shin_probabilities(scale, z[gid]), minlength=n_groups)

    z = _bisect(total_at, np.zeros(n_groups), np.ones(n_groups))
    p = _shin_probabilities(scale, z[gid])
    ok = (booksum > 1.0) & positive & (np.abs(total_at(z) - 1.0) < _SUM_TOLERANCE)
    return z, p, ok


def _solve_power(pi: np.ndarray, gid: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The power exponent k per group, the rows' fair probabilities, and convergence."""
    booksum = np.bincount(gid, weights=pi, minlength=n_groups)
    counts = np.bincount(gid, minlength=n_groups)
    pi_max = np.zeros(n_groups)
    np.maximum.at(pi_max, gid, pi)
    usable = (booksum > 1.0) & (pi_max < 1.0) & _all_positive(pi, gid, n_groups)
    safe_max = np.where(usable, pi_max, 0.5)
    hi = np.where(usable, np.maximum(np.log(np.maximum(counts, 2)) / -np.log(safe_max), 1.0), 1.0)
    log_pi = np.log(np.where(usable[gid], pi, 0.5))

    def total_at(k: np.ndarray) -> np.ndarray:
        return np.bincount(gid, weights=np.exp(k[gid] * log_pi), minlength=n_groups)

    k = _bisect(total_at, np.ones(n_groups), hi)
    p = np.exp(k[gid] * log_pi)
    ok = usable & (np.abs(total_at(k) - 1.0) < _SUM_TOLERANCE)
    return k, p, ok


# --- the outcome-set rule --------------------------------------------------------------------


def _branches(market: str, outcomes: Sequence[str]) -> list[int]:
    """Double chance & BTTS / O/U cover each result twice within each branch (yes/no,
    over/under): number the branches 0, 1 by their outcome suffix."""
    if market not in _DOUBLE_CHANCE_COMBOS:
        return [0] * len(outcomes)
    suffixes = [o.split("_", 1)[1] for o in outcomes]
    order = list(dict.fromkeys(suffixes))
    return [order.index(s) for s in suffixes]


def outcome_rule(market: str, book: str) -> OutcomeRule | None:
    """The rule for one market on one book; None when the book cannot express the market."""
    entry = load_catalogue().markets.get(market)
    if entry is None:
        return None
    outcomes = tuple(entry.outcome_names(book).values())
    if not outcomes:
        return None
    kind: Kind
    for table, kind in ((_OVERLAP, OVERLAP), (_PARTIAL, PARTIAL)):
        reason = table.get((market, book)) or table.get((market, None))
        if reason:
            return OutcomeRule(market, book, kind, outcomes, reason)
    if len(outcomes) < 2:
        return OutcomeRule(market, book, PARTIAL, outcomes, "a single outcome")
    if market in _DOUBLE_CHANCE or market in _DOUBLE_CHANCE_COMBOS:
        branches = _branches(market, outcomes)
        if any(branches.count(b) != 3 for b in branches):
            # The complement trick in _fair_probabilities needs three outcomes per branch.
            raise ValueError(f"{market} on {book}: a double-cover branch without exactly 3 outcomes")
        return OutcomeRule(market, book, DOUBLE_COVER, outcomes, "every result is in two outcomes")
    return OutcomeRule(market, book, EXCLUSIVE, outcomes)


@lru_cache(maxsize=1)
def outcome_rules() -> pl.DataFrame:
    """Every (market, book, outcome) the catalogue knows, with the market's kind for that book.

    ``outcome_set`` names the book's whole set (``|``-joined); ``residual`` marks outcomes
    whose meaning depends on it (see ``RESIDUAL_OUTCOMES``); ``branch`` numbers the
    sub-partitions of double-cover combos.
    """
    rows = []
    for market in load_catalogue().markets:
        for book in BOOK_COLUMNS:
            rule = outcome_rule(market, book)
            if rule is None:
                continue
            outcome_set = "|".join(rule.outcomes)
            for outcome, branch in zip(rule.outcomes, _branches(market, rule.outcomes), strict=True):
                rows.append(
                    (market, book, rule.kind, len(rule.outcomes), outcome_set, outcome,
                     branch, (market, outcome) in RESIDUAL_OUTCOMES)
                )
    return pl.DataFrame(
        rows,
        schema={
            "market": pl.String,
            "bookmaker": pl.String,
            "kind": pl.String,
            "n_outcomes": pl.Int64,
            "outcome_set": pl.String,
            "outcome": pl.String,
            "branch": pl.Int64,
            "residual": pl.Boolean,
        },
        orient="row",
    )


# --- the frame -------------------------------------------------------------------------------


def _basis() -> pl.Expr:
    group = "_m_gid"
    kind = pl.col("_m_kind")
    n_rows = pl.len().over(group)
    n_distinct = pl.col("outcome").n_unique().over(group)
    n_known = pl.col("outcome").filter(pl.col("_m_known")).n_unique().over(group)
    all_available = pl.col("available").fill_null(False).all().over(group)
    all_valid = pl.col("_m_valid").all().over(group)
    return (
        pl.when(kind.is_null()).then(pl.lit(UNKNOWN_MARKET))
        .when(kind == OVERLAP).then(pl.lit(OVERLAP))
        .when(kind == PARTIAL).then(pl.lit(PARTIAL))
        .when(n_known < n_distinct).then(pl.lit(UNKNOWN_OUTCOME))
        .when(n_rows > n_distinct).then(pl.lit(DUPLICATE_OUTCOME))
        .when(n_known < pl.col("_m_n")).then(pl.lit(PARTIAL))
        .when(~all_available).then(pl.lit(SUSPENDED))
        .when(~all_valid).then(pl.lit(INVALID_ODDS))
        .otherwise(kind)
    )


_METHODS: tuple[Method, ...] = ("proportional", "power", "shin")


def _compact(ids: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, inverse = np.unique(ids, return_inverse=True)
    return inverse, uniq.size


def _fair_probabilities(
    gid: np.ndarray, branch: np.ndarray, inv: np.ndarray, double: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fair probability and method (index into ``_METHODS``) per row of complete groups.

    Double-cover rows are first turned into their complement result ("1X" → the chance of
    2), which makes the group an ordinary partition; the answer is mapped back after.
    """
    gid, n_groups = _compact(gid)
    bid, n_branches = _compact(gid * 2 + branch)
    branch_sum = np.bincount(bid, weights=inv, minlength=n_branches)[bid]
    pi = np.where(double, branch_sum / 2.0 - inv, inv)
    size = np.bincount(gid, minlength=n_groups)[gid]

    prob = pi / np.bincount(gid, weights=pi, minlength=n_groups)[gid]  # proportional fallback
    method = np.zeros(gid.size, dtype=np.int8)
    for code, solver, rows in ((1, _solve_power, size == 2), (2, _solve_shin, size >= 3)):
        if not rows.any():
            continue
        sub_gid, n_sub = _compact(gid[rows])
        _, p, ok = solver(pi[rows], sub_gid, n_sub)
        good = np.flatnonzero(rows)[ok[sub_gid]]
        prob[good] = p[ok[sub_gid]]
        method[good] = code

    branch_prob = np.bincount(bid, weights=prob, minlength=n_branches)[bid]
    return np.where(double, branch_prob - prob, prob), method


def add_margins(prices: pl.DataFrame) -> pl.DataFrame:
    """``prices`` with ``margin_pct``, ``fair_odds``, ``margin_basis`` and ``devig_method``.

    Input needs sr_id, bookmaker, market, line (null = none), outcome, odds, available; other
    columns and the row order are kept. ``margin_pct`` is rounded to 2 decimals and repeated
    on every row of its group; margin and fair odds are null unless the basis is
    ``exclusive`` or ``double_cover`` (see the module docstring for the rule).
    """
    rules = outcome_rules()
    kinds = rules.select("market", "bookmaker", "kind", "n_outcomes").unique()
    known = rules.select("market", "bookmaker", "outcome", "branch", pl.lit(True).alias("_m_known"))
    odds = pl.col("odds").cast(pl.Float64)
    frame = (
        prices.drop([c for c in OUTPUT_COLUMNS if c in prices.columns])
        .with_columns(_m_gid=pl.struct(list(GROUP_KEYS)).rank("dense"))
        .join(
            kinds.rename({"kind": "_m_kind", "n_outcomes": "_m_n"}),
            on=["market", "bookmaker"], how="left", maintain_order="left",
        )
        .join(
            known.rename({"branch": "_m_branch"}),
            on=["market", "bookmaker", "outcome"], how="left", maintain_order="left",
        )
        .with_columns(
            pl.col("_m_known").fill_null(False),
            _m_inv=1.0 / odds,
            _m_valid=(odds.is_finite() & (odds > 1.0)).fill_null(False),
        )
        .with_columns(margin_basis=_basis())
    )
    solvable = (frame["margin_basis"].is_in([EXCLUSIVE, DOUBLE_COVER])).to_numpy()
    rows = frame.filter(pl.Series(solvable))
    prob, method = _fair_probabilities(
        rows["_m_gid"].to_numpy().astype(np.int64),
        rows["_m_branch"].to_numpy().astype(np.int64),
        rows["_m_inv"].to_numpy(),
        (rows["margin_basis"] == DOUBLE_COVER).to_numpy(),
    )
    fair = np.full(frame.height, np.nan)
    fair[solvable] = 1.0 / prob
    method_code = np.full(frame.height, -1, dtype=np.int8)
    method_code[solvable] = method
    covers = pl.when(pl.col("margin_basis") == DOUBLE_COVER).then(2.0).otherwise(1.0)
    margin = ((pl.col("_m_inv").sum().over("_m_gid") / covers - 1.0) * 100.0).round(2)
    frame = frame.with_columns(
        margin_pct=pl.when(pl.col("margin_basis").is_in([EXCLUSIVE, DOUBLE_COVER])).then(margin),
        fair_odds=pl.Series(fair, dtype=pl.Float64).fill_nan(None),
        devig_method=pl.Series(method_code).replace_strict(
            dict(enumerate(_METHODS)), default=None, return_dtype=pl.String
        ),
    )
    return frame.select(
        *[c for c in prices.columns if c not in OUTPUT_COLUMNS],
        pl.col("margin_pct").cast(pl.Float64),
        "fair_odds",
        pl.col("margin_basis").cast(pl.String),
        "devig_method",
    )
