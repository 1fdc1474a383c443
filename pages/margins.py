"""Margin analytics: what each book charged over a period, where, and how close to kickoff, and
how often each book re-prices.

Margins are rebuilt from the price history (``engine/store/analytics.py``): every market's full
outcome set as of each change, with the written margin rule of ``engine/markets/margins.py``,
weighted by how long each state stood. The scheduler keeps those sums per hour and per day
(``engine/store/rollups.py``), so a period is a sum of stored slices plus the last hour or so
rebuilt live; the page says how far the rollups reach. The result is cached for
``ANALYTICS_TTL``; every roll-up after it (markets, tournament, country, bucket) is a polars
group-by of that one read.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from engine.config import BOOKS
from engine.markets.catalogue import load_catalogue
from engine.store import Store, analytics, views
from pages import _shared

_shared.page()

#: A period of days does not need minute-fresh figures; the scheduler adds an hour's rollup
#: every hour, and without rollups the rebuild is the page's cost.
ANALYTICS_TTL = 300
#: Charts show the most-quoted rows (by hours with a margin); the tables below them have all.
TOP = 15
LABELS = [views.BOOK_LABELS[b] for b in BOOKS]
BOOK_COLOURS = alt.Scale(domain=LABELS, range=["#1f7a3d", "#0d47a1", "#e65100"])


def margin_analytics(store: Store, start: datetime, end: datetime) -> dict[str, Any]:
    """The store's figures, with when they were read, how long that took and how far the
    rollups reached (the page says so)."""
    started = time.perf_counter()
    result: dict[str, Any] = store.margin_analytics(start, end)
    return {**result, "computed_at": views.utcnow(), "seconds": time.perf_counter() - started,
            "rollup": store.margin_rollup_status(), "rollup_error": store.get_settings().get("last_rollup_error")}


def rollup_note(status: Any, stop: datetime) -> str:
    """Where the rollups stand against the period's end: the hours after them were rebuilt live."""
    if status.through is None:
        return ("Rollups not built yet (the scheduler builds them every few minutes): the whole period "
                "was rebuilt from the price history, which is slower.")
    live = max(min(stop, views.utcnow()) - status.through, timedelta(0))
    rest = f"; the last {_shared.duration(live.total_seconds())} rebuilt live" if live.total_seconds() >= 60 else ""
    return (f"Hourly rollups up to {_shared.local_time(status.through)}, brought up to date "
            f"{_shared.ago(status.rolled_at)}{rest}.")


READS = {"margin_analytics": margin_analytics}


@st.cache_data(ttl=ANALYTICS_TTL, show_spinner=False)
def _read(path: str, view: str, *args: Any) -> Any:
    """``_shared.slow`` with this page's lifetime (``path`` keys the cache per database)."""
    return READS[view](_shared.store(), *args)


def market_name(key: str) -> str:
    market = load_catalogue().markets.get(key)
    return market.name if market else key


def labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """Book keys as the names analysts know, for charts."""
    return frame.with_columns(pl.col("bookmaker").replace_strict(views.BOOK_LABELS).alias("Book"))


def book_table(frame: pl.DataFrame, index: dict[str, str], value: str, suffix: str) -> pl.DataFrame:
    """Books side by side (``analytics.wide_by_book``) with readable column names."""
    wide = analytics.wide_by_book(frame, list(index), value).rename(
        {**index, **{b: f"{views.BOOK_LABELS[b]} {suffix}" for b in BOOKS}})
    return wide.rename({"gap": "Δ margin"}) if suffix == "margin %" else wide.drop("gap")


def top(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """The rows of the ``TOP`` keys with the most hours (summed over books)."""
    keep = frame.group_by(key).agg(pl.col("hours").sum()).sort("hours", descending=True).head(TOP).select(key)
    return frame.join(keep, on=key, how="semi")


def bars(frame: pl.DataFrame, category: str, value: str, title: str, key: str, fmt: str = ".1f") -> None:
    """Grouped horizontal bars, one colour per book, categories in the frame's order."""
    order = frame[category].unique(maintain_order=True).to_list()
    chart = (
        alt.Chart(labelled(frame).select(category, value, "Book").to_pandas())
        .mark_bar()
        .encode(
            y=alt.Y(f"{category}:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
            x=alt.X(f"{value}:Q", title=title),
            yOffset=alt.YOffset("Book:N", sort=LABELS),
            color=alt.Color("Book:N", scale=BOOK_COLOURS),
            tooltip=["Book", category, alt.Tooltip(f"{value}:Q", format=fmt)],
        )
        .properties(height=max(160, 16 * len(order) * len(BOOKS) // 2))
    )
    st.altair_chart(chart, width="stretch", key=key)


def margin_section(rows: pl.DataFrame, category: str, index: dict[str, str], name: str, key: str) -> None:
    """Bars of the ``TOP`` categories, then every category's margins side by side, downloadable."""
    bars(top(rows, [category]).sort("hours", descending=True), category, "margin_pct", "average margin %",
         f"{key}_chart")
    table = book_table(rows, index, "margin_pct", "margin %")
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config=_shared.odds_config(table))
    _shared.downloads(table, name, key=key)


st.title("Margin analytics")
st.caption("Each book's margin rebuilt from its price history: every market's complete outcome set as of "
           "each change, (Σ 1/odds − 1) × 100 (double chance ÷ 2), averaged over time — a margin that stood "
           "for a day weighs a day, however often the book re-priced. Incomplete or suspended sets have no "
           "margin. Prices count until kickoff.")

today = _shared.local_today()
controls = st.columns([2, 4, 1])
picked = controls[0].date_input("Period", (today - timedelta(days=6), today), max_value=today, key="ma_period",
                                help="local days, both included; default the last 7 days")
days = list(picked) if isinstance(picked, (tuple, list)) else [picked]
first, last = (days[0], days[-1]) if days else (today, today)
start, end = _shared.local_days(first, (last - first).days + 1)
if controls[2].button("Recompute", key="ma_refresh", help=f"figures are kept {ANALYTICS_TTL // 60} minutes"):
    _read.clear()

with st.spinner("Summing the rolled-up hours and rebuilding the rest from the price history…"):
    result = _shared.guarded(_read, "margin_analytics", start, end)
cells: pl.DataFrame = result["cells"]
buckets: pl.DataFrame = result["buckets"]
if cells.is_empty():
    st.info("No price history in this period — pick other days, or let the scheduler collect some "
            "(press **Scrape now** in the sidebar).")
    st.stop()

if (result.get("rollup_error") or {}).get("error"):
    failed = result["rollup_error"]
    st.warning(f"The scheduler's last margin rollup failed ({_shared.ago(datetime.fromisoformat(failed['at']))}): "
               f"{failed['error']}. The figures are still right — the hours after the rollups are rebuilt from "
               "the price history — but the page is slower until a rollup succeeds.")
st.caption(f"Computed {_shared.ago(result['computed_at'])} in {result['seconds']:.1f} s; kept for "
           f"{ANALYTICS_TTL // 60} minutes (**Recompute** to refresh now). {rollup_note(result['rollup'], end)}")
catalogue_order = {k: i for i, k in enumerate(load_catalogue().markets)}
options = sorted(cells["market"].unique().to_list(), key=lambda m: (catalogue_order.get(m, 1e9), m))
chosen = controls[1].multiselect("Markets", options, format_func=market_name, key="ma_markets",
                                 placeholder="All markets",
                                 help="the books quote different market mixes: pick one market to compare like with like")
markets = chosen or None

overall = analytics.margin_by(cells, [], markets)
rates = analytics.change_rates(cells, (), markets)
cards = st.columns(len(BOOKS))
for card, book in zip(cards, BOOKS):
    row = overall.filter(pl.col("bookmaker") == book)
    rate = rates.filter(pl.col("bookmaker") == book)
    card.metric(f"{views.BOOK_LABELS[book]} average margin",
                f"{row['margin_pct'][0]:.2f}%" if row.height else "—")
    if row.height:
        card.caption(f"{row['hours'][0]:,.0f} market-hours with a margin · "
                     + (f"{rate['changes_per_price_hour'][0]:.3f} price changes per price-hour" if rate.height else ""))

st.subheader("By market")
by_market = analytics.margin_by(cells, ["market"], markets).with_columns(
    pl.col("market").map_elements(market_name, return_dtype=pl.String).alias("Market"))
margin_section(by_market, "Market", {"Market": "Market"}, "oddsdesk-margin-by-market", "ma_market")

st.subheader("By tournament and country")
by_tournament, by_country = st.tabs(["Tournament", "Country"])
with by_tournament:
    rows = analytics.margin_by(cells, ["country", "tournament"], markets).with_columns(
        pl.format("{} – {}", pl.col("country"), pl.col("tournament")).alias("Tournament"))
    margin_section(rows, "Tournament", {"country": "Country", "tournament": "Tournament"},
                   "oddsdesk-margin-by-tournament", "ma_tournament")
with by_country:
    rows = analytics.margin_by(cells, ["country"], markets).rename({"country": "Country"})
    margin_section(rows, "Country", {"Country": "Country"}, "oddsdesk-margin-by-country", "ma_country")

st.subheader("By time to kickoff")
kickoff = analytics.margin_by_bucket(buckets, markets)
if kickoff.is_empty():
    st.caption("No margin in this period.")
else:
    chart = (
        alt.Chart(labelled(kickoff).select("bucket", "margin_pct", "hours", "Book").to_pandas())
        .mark_line(point=True)
        .encode(
            x=alt.X("bucket:O", sort=list(analytics.BUCKET_ORDER), title="time to kickoff",
                    axis=alt.Axis(labelAngle=0)),
            y=alt.Y("margin_pct:Q", title="average margin %", scale=alt.Scale(zero=False)),
            color=alt.Color("Book:N", scale=BOOK_COLOURS),
            tooltip=["Book", "bucket", alt.Tooltip("margin_pct:Q", format=".2f", title="margin %"),
                     alt.Tooltip("hours:Q", format=",.0f", title="market-hours")],
        )
        .properties(height=260)
    )
    st.altair_chart(chart, width="stretch", key="ma_kickoff_chart")
    order = {b: i for i, b in enumerate(analytics.BUCKET_ORDER)}
    table = book_table(kickoff, {"bucket": "Time to kickoff"}, "margin_pct", "margin %").sort(
        pl.col("Time to kickoff").replace_strict(order, return_dtype=pl.Int64))
    st.dataframe(table, hide_index=True, key="ma_kickoff_table", column_config=_shared.odds_config(table))

st.subheader("How often prices change")
st.caption("Odds changes per price per hour on offer: a price quoted for 10 hours that moved twice counts "
           "2 changes over 10 price-hours. Suspensions and restores with the same odds are counted apart.")
if rates.is_empty():
    st.caption("No price was on offer in this period.")
else:
    bars(rates.with_columns(pl.lit("all markets" if markets is None else "chosen markets").alias("Scope")),
         "Scope", "changes_per_price_hour", "odds changes per price per hour", "ma_changes_chart", fmt=".4f")
    per_book = labelled(rates).select(
        "Book", pl.col("odds_changes").alias("Odds changes"), pl.col("other_changes").alias("Suspensions / restores"),
        pl.col("price_hours").alias("Price-hours on offer"),
        pl.col("changes_per_price_hour").alias("Changes per price-hour"))
    st.dataframe(per_book, hide_index=True, key="ma_changes_books", column_config={
        "Price-hours on offer": st.column_config.NumberColumn(format="localized"),
        "Changes per price-hour": st.column_config.NumberColumn(format="%.4f"),
    })
    by_market_rates = analytics.change_rates(cells, ["market"], markets).with_columns(
        pl.col("market").map_elements(market_name, return_dtype=pl.String).alias("Market"))
    table = book_table(by_market_rates, {"Market": "Market"}, "changes_per_price_hour", "changes per price-hour")
    st.dataframe(table, hide_index=True, key="ma_changes_markets", column_config={
        c: st.column_config.NumberColumn(c, format="%.4f") for c in table.columns if c.endswith("price-hour")})
    _shared.downloads(table, "oddsdesk-price-changes-by-market", key="ma_changes")
