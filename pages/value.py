"""Value & arbitrage: where BetPawa's prices are out of line with the market, and cross-book arbs.

The earlier tool showed raw prices and left the analyst to spot exposure by eye. This page
ranks BetPawa's prices against a consensus fair price (``engine.markets.consensus``: the mean of
the books' de-margined probabilities) and against the best competitor, and lists the outcome
sets where the best prices of different books add up to a sure profit.

Everything is computed once per cache period for all upcoming events (one read of the
available current prices); the filters only narrow the frames, so changing one is instant.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

import polars as pl
import streamlit as st

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.markets.consensus import arbitrages, consensus_probabilities, edges
from engine.markets.margins import add_margins, outcome_rules
from engine.store import Store, views
from pages import _shared

_shared.page()

#: Defaults of the two thresholds (percent): an edge above +2 % is exposure; 5 % below the best
#: competitor is uncompetitive.
GENEROUS_EDGE_PCT = 2.0
STINGY_GAP_PCT = 5.0
#: A grid this long is already more than anyone reads; the downloads hold every matching row.
MAX_ROWS = 1000

_H = views.HIDDEN
_EVENT = ("sr_id", "kickoff", "country", "tournament", "home", "away")
_PRICE_KEY = ["sr_id", "market", "line", "outcome"]

_UPCOMING_SQL = """
SELECT c.sr_id, e.kickoff, e.country, e.tournament, e.home, e.away,
       c.bookmaker, c.market, c.line, c.outcome, c.odds, c.available
FROM odds_current c JOIN events e ON e.sr_id = c.sr_id
WHERE c.available AND e.kickoff >= ?
"""


def upcoming_prices(store: Store, now: datetime) -> pl.DataFrame:
    """Available current prices of events not yet started: nothing else can be bet on.

    Unavailable rows are left out on purpose: ``add_margins`` gives a suspended set no margin
    either way, and the consensus and arbitrages only use available prices.
    """
    return store.query(_UPCOMING_SQL, [now])


def betpawa_vs_market(priced: pl.DataFrame, consensus: pl.DataFrame) -> pl.DataFrame:
    """Every available BetPawa price with its consensus, edge and the best competitor price.

    Columns: the event columns, market, line, outcome, odds, consensus_prob, books, edge (null
    without a consensus), best_odds and best_book (null when no competitor quotes it), gap =
    odds ÷ best_odds − 1. A residual outcome (correct score "Other") is compared only with
    books that list the same scores, as the consensus does; ties go to the first book in
    ``BOOKS`` order.
    """
    rules = outcome_rules().select(
        "market", "bookmaker", "outcome",
        pl.when(pl.col("residual")).then(pl.col("outcome_set")).otherwise(None).alias("_set"),
    )
    keyed = priced.join(rules, on=["market", "bookmaker", "outcome"], how="inner")
    key = [*_PRICE_KEY, "_set"]
    rank = {b: i for i, b in enumerate(BOOKS)}
    best = (
        keyed.filter(pl.col("bookmaker") != views.REFERENCE)
        .with_columns(_rank=pl.col("bookmaker").replace_strict(rank, default=len(BOOKS), return_dtype=pl.Int64))
        .sort(["odds", "_rank"], descending=[True, False])
        .group_by(key, maintain_order=True)
        .first()
        .select(*key, best_odds=pl.col("odds"), best_book=pl.col("bookmaker"))
    )
    edge = (
        edges(priced, consensus)
        .filter(pl.col("bookmaker") == views.REFERENCE)
        .select(*_PRICE_KEY, "consensus_prob", "books", "edge")
    )
    return (
        keyed.filter(pl.col("bookmaker") == views.REFERENCE)
        .join(best, on=key, how="left", nulls_equal=True)
        .join(edge, on=_PRICE_KEY, how="left", nulls_equal=True)
        .with_columns(gap=pl.col("odds") / pl.col("best_odds") - 1.0)
        .select(*_EVENT, "market", "line", "outcome", "odds", "consensus_prob", "books", "edge",
                "best_odds", "best_book", "gap")
    )


@lru_cache(maxsize=1)
def _labels() -> pl.DataFrame:
    """Market and outcome names as the comparison pages show them, with catalogue order."""
    rows = []
    for i, market in enumerate(load_catalogue().markets.values()):
        for j, (outcome, label) in enumerate(views.outcome_labels(market).items()):
            rows.append((market.key, outcome, market.name, label, i, j))
    return pl.DataFrame(rows, schema={"market": pl.String, "outcome": pl.String, "Market": pl.String,
                                      "Outcome": pl.String, f"{_H}m_order": pl.Int64, f"{_H}o_order": pl.Int64},
                        orient="row")


def _event_columns() -> list[pl.Expr]:
    return [
        pl.format("{} – {}", pl.col("home"), pl.col("away")).alias("Match"),
        pl.col("kickoff").alias("Kickoff"),
        pl.col("Market"),
        pl.col("line").map_elements(views.line_text, return_dtype=pl.String).fill_null("").alias("Line"),
    ]


def _trailing_columns() -> list[pl.Expr]:
    """Where the event is played and its id, after the numbers the analyst came for; hidden keys."""
    return [
        pl.col("country").alias("Country"), pl.col("tournament").alias("Tournament"), pl.col("sr_id").alias("SR id"),
        pl.col("market").alias(f"{_H}market"), pl.col("line").alias(f"{_H}line"),
        pl.col("kickoff").alias(f"{_H}kickoff"), pl.col(f"{_H}m_order"), pl.col(f"{_H}o_order"),
    ]


def value_grid(rows: pl.DataFrame) -> pl.DataFrame:
    """``betpawa_vs_market`` as the page's grid: readable columns, percentages, hidden keys."""
    labelled = rows.join(_labels(), on=["market", "outcome"], how="left")
    return labelled.select(
        *_event_columns(),
        pl.col("Outcome").fill_null(pl.col("outcome")),
        pl.col("odds").alias("BetPawa"),
        pl.col("best_odds").alias("Best competitor"),
        pl.col("best_book").replace_strict(views.BOOK_LABELS, default=None).alias("Competitor"),
        (1.0 / pl.col("consensus_prob")).alias("Consensus fair"),
        (pl.col("edge") * 100.0).alias("Edge %"),
        (pl.col("gap") * 100.0).alias("vs best %"),
        pl.col("books").alias("Books in consensus"),
        *_trailing_columns(),
    )


def arbitrage_grid(legs: pl.DataFrame, events_frame: pl.DataFrame) -> pl.DataFrame:
    """One row per leg of each arbitrage, most profitable arbitrage first, legs in outcome order."""
    labelled = legs.join(events_frame, on="sr_id", how="left").join(_labels(), on=["market", "outcome"], how="left")
    return labelled.select(
        *_event_columns(),
        pl.col("profit_pct").alias("Profit %"),
        pl.col("Outcome").fill_null(pl.col("outcome")),
        pl.col("bookmaker").replace_strict(views.BOOK_LABELS, default=pl.col("bookmaker")).alias("Book"),
        pl.col("odds").alias("Odds"),
        pl.col("stake").alias("Stake of 100"),
        (pl.col("stake") * pl.col("odds")).alias("Returns"),
        pl.col("booksum").alias("Σ 1/odds"),
        *_trailing_columns(),
    ).sort(["Profit %", f"{_H}kickoff", "SR id", f"{_H}m_order", f"{_H}line", f"{_H}o_order"],
           descending=[True, False, False, False, False, False], nulls_last=False)


def value_frames(store: Store) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(BetPawa value grid, arbitrage legs grid) for every upcoming event: the cached work."""
    prices = upcoming_prices(store, views.utcnow())
    if prices.is_empty():
        return pl.DataFrame(), pl.DataFrame()
    priced = add_margins(prices)
    grid = value_grid(betpawa_vs_market(priced, consensus_probabilities(priced)))
    legs = arbitrages(priced)
    events_frame = prices.select(_EVENT).unique("sr_id")
    return grid, arbitrage_grid(legs, events_frame) if not legs.is_empty() else pl.DataFrame()


READS = {"value_frames": value_frames}


@st.cache_data(ttl=_shared.SLOW_TTL, show_spinner="Computing consensus prices…")
def _read(path: str, view: str, *args: Any) -> Any:
    """``_shared.fresh`` for this page's own reads (``path`` keys the cache per database)."""
    return READS[view](_shared.store(), *args)


def narrow(frame: pl.DataFrame, markets: list[str], tournaments: list[tuple[str, str]],
           start: datetime | None, end: datetime | None, now: datetime) -> pl.DataFrame:
    """The shared filters; kickoff ≥ now again, as the cached frame may predate a kickoff."""
    if frame.is_empty():
        return frame
    kickoff = pl.col(f"{_H}kickoff")
    cond = kickoff >= now
    if start is not None:
        cond &= kickoff >= start
    if end is not None:
        cond &= kickoff < end
    if markets:
        cond &= pl.col(f"{_H}market").is_in(markets)
    frame = frame.filter(cond)
    if tournaments:
        pairs = pl.DataFrame(tournaments, schema={"Country": pl.String, "Tournament": pl.String}, orient="row")
        frame = frame.join(pairs, on=["Country", "Tournament"], how="semi")
    return frame


def _config(frame: pl.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Kickoff": st.column_config.DatetimeColumn("Kickoff", format="ddd D MMM, HH:mm"),
        "Match": st.column_config.TextColumn("Match", pinned=True),
        "Edge %": st.column_config.NumberColumn(
            "Edge %", format="%+.1f%%", help="BetPawa odds × consensus probability − 1: a bettor's expected return"),
        "vs best %": st.column_config.NumberColumn(
            "vs best %", format="%+.1f%%", help="BetPawa odds ÷ best competitor odds − 1"),
        "Consensus fair": st.column_config.NumberColumn(
            "Consensus fair", format="%.2f", help="1 ÷ the mean of the books' de-margined probabilities"),
        "Profit %": st.column_config.NumberColumn("Profit %", format="%.2f%%", help="(1 ÷ Σ 1/odds − 1) × 100"),
        "Stake of 100": st.column_config.NumberColumn("Stake of 100", format="%.2f"),
        "Returns": st.column_config.NumberColumn("Returns", format="%.2f", help="stake × odds: the same on every leg"),
        "Σ 1/odds": st.column_config.NumberColumn("Σ 1/odds", format="%.4f"),
    }
    for c in ("BetPawa", "Best competitor", "Odds"):
        config[c] = st.column_config.NumberColumn(c, format="%.2f")
    return {k: v for k, v in config.items() if k in frame.columns}


def show(frame: pl.DataFrame, key: str, name: str) -> None:
    """A ranked grid (first ``MAX_ROWS``), its row opening the event, and downloads of all rows."""
    visible = _shared.local(frame.head(MAX_ROWS), "Kickoff")
    picked = st.dataframe(views.shown(visible), hide_index=True, key=key, column_config=_config(visible),
                          on_select="rerun", selection_mode="single-row", placeholder="—",
                          height=min(38 + 35 * visible.height, 600))
    if frame.height > MAX_ROWS:
        st.caption(f"Showing the first {MAX_ROWS} of {frame.height} rows; the downloads hold all of them.")
    if picked and picked.selection.rows:
        _shared.go_to_event(visible["SR id"][picked.selection.rows[0]])
    _shared.downloads(_shared.local(frame, "Kickoff"), f"{name}-{views.utcnow():%Y%m%d-%H%M}", key=key)


st.title("Value & arbitrage")
grid, arbs = _shared.guarded(_read, "value_frames")
if grid.is_empty():
    st.info("No upcoming event has prices yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + ".")
    st.stop()

catalogue = load_catalogue()
now = views.utcnow()
today = _shared.local_today(now)
last_day = max(today, _shared.local(grid, f"{_H}kickoff")[f"{_H}kickoff"].max().date())

top = st.columns([3, 3, 3])
market_keys = (pl.concat([f.select(f"{_H}market", f"{_H}m_order") for f in (grid, arbs) if not f.is_empty()])
               .unique().sort(f"{_H}m_order")[f"{_H}market"].to_list())
markets = top[0].multiselect("Market", market_keys, format_func=lambda m: catalogue.markets[m].name,
                             key="value_markets", placeholder="All markets")
tournament_options = grid.select("Country", "Tournament").unique().sort(["Country", "Tournament"]).rows()
tournaments = top[1].multiselect("Tournament", tournament_options, format_func=lambda t: f"{t[1]} · {t[0]}",
                                 key="value_tournaments", placeholder="All tournaments")
picked_days = top[2].date_input("Kickoff dates", (today, last_day), key="value_dates")
start = end = None
days: tuple[date, ...] = tuple(picked_days) if isinstance(picked_days, (tuple, list)) else (picked_days,)
if days:
    first, final = days[0], days[-1]
    start, end = _shared.local_days(first, (final - first).days + 1)

limits = st.columns([3, 3, 3])
min_edge = limits[0].number_input("Min edge % (too generous)", value=GENEROUS_EDGE_PCT, step=0.5,
                                  key="value_min_edge",
                                  help="BetPawa prices whose edge against the consensus is above this")
stingy_gap = limits[1].number_input("Below best competitor by % (too stingy)", value=STINGY_GAP_PCT, min_value=0.0,
                                    step=0.5, key="value_stingy_gap",
                                    help="BetPawa prices this far below the best competitor's for the same outcome")

scope = narrow(grid, markets, tournaments, start, end, now)
generous = scope.filter(pl.col("Edge %") > min_edge).sort(["Edge %", f"{_H}kickoff"], descending=[True, False])
stingy = scope.filter(pl.col("vs best %") < -stingy_gap).sort(["vs best %", f"{_H}kickoff"])
arb_legs = narrow(arbs, markets, tournaments, start, end, now)
arb_count = arb_legs.select("SR id", f"{_H}market", f"{_H}line").unique().height if not arb_legs.is_empty() else 0

st.caption(f"{scope['SR id'].n_unique()} upcoming events · {scope.height} BetPawa prices in scope · "
           f"times in {_shared.display_tz()} · select a row to open the event")

tabs = st.tabs([f"Too generous ({generous.height})", f"Too stingy ({stingy.height})",
                f"Arbitrages ({arb_count})"])
with tabs[0]:
    st.caption("BetPawa pays more than the market's consensus says the outcome is worth: exposure risk. "
               "Largest edge first.")
    if generous.is_empty():
        st.success(f"No BetPawa price is more than {min_edge:g}% above the consensus fair price in this scope — "
                   "lower **Min edge %** to see the closest ones, or widen the filters.")
    else:
        show(generous, "value_generous", "oddsdesk-too-generous")
with tabs[1]:
    st.caption("A competitor pays clearly more for the same outcome: BetPawa is uncompetitive there. "
               "Furthest below first.")
    if stingy.is_empty():
        st.success(f"No BetPawa price is more than {stingy_gap:g}% below the best competitor in this scope — "
                   "lower the threshold or widen the filters.")
    else:
        show(stingy, "value_stingy", "oddsdesk-too-stingy")
with tabs[2]:
    st.caption("Backing every outcome at the best price across books returns more than the total stake, "
               "whatever the result. One row per leg; stakes split 100.")
    if arb_legs.is_empty():
        st.success("No arbitrage among the current prices in this scope — the usual state: each book's margin "
                   "keeps Σ 1/best odds above 1. Widen the filters or check again after the next scrape.")
    else:
        show(arb_legs, "value_arbs", "oddsdesk-arbitrages")

with st.expander("How these numbers are computed"):
    st.markdown(f"""
**Consensus fair price.** For each book that quotes a whole market (every outcome, all
available), we take the book's margin out of its prices — Shin's method for three or more
outcomes, the power method for two; both take more of the margin off long shots, as bookmakers
do. That gives the book's own view of each outcome's probability. The **consensus** is the plain
average of those probabilities over the books (one vote each, BetPawa included); the
**consensus fair odds** are 1 ÷ that average. *Books in consensus* says how many books voted.

**Edge** = BetPawa odds × consensus probability − 1: what a bettor expects to win per 1 staked if
the consensus is right. Normally negative (that is the margin); **too generous** means above
{min_edge:g}%: BetPawa offers more than the market thinks the outcome is worth.

**Too stingy** compares BetPawa's odds with the best competitor's odds for the same outcome:
more than {stingy_gap:g}% below it, and a bettor has a clearly better price elsewhere.

**Arbitrage.** For a market whose outcomes cover every result exactly once (1X2, over/under,
correct score…), take the best odds for each outcome across the books. If Σ 1/best odds < 1,
staking 100 × (1/odds) ÷ Σ on each outcome returns 100 ÷ Σ whatever happens; profit % =
(1 ÷ Σ − 1) × 100. Double chance is left out (its outcomes overlap), and correct score "Other" is
only combined between books that list the same scores.
""")
