"""Event detail: every mapped market of one event, the three books side by side, with history.

The event comes from ``?sr_id=`` (a shareable link) or the comparison page's row selection;
without one the page offers a picker.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from engine.markets.catalogue import load_catalogue
from engine.pipeline.tiers import tier_of
from engine.store import views
from pages import _shared

_shared.page()

CATEGORY_LABELS = {
    "popular": "Popular", "goals": "Goals", "handicaps": "Handicaps", "combos": "Combos", "halves": "Halves",
    "corners": "Corners", "cards": "Cards", "specials": "Specials", "other": "Other",
}
BOOK_COLOURS = alt.Scale(domain=[views.BOOK_LABELS[b] for b in views.BOOKS], range=["#1f7a3d", "#0d47a1", "#e65100"])

catalogue = load_catalogue()
all_events = _shared.fresh("events").sort("kickoff")
sr_id = st.query_params.get("sr_id") or st.session_state.get("event_sr_id")

if all_events.is_empty():
    st.title("Event detail")
    st.info("No events yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + ".")
    st.stop()

ids = all_events["sr_id"].to_list()
labels = {
    r["sr_id"]: f"{_shared.local_time(r['kickoff'])} · {r['home']} – {r['away']} ({r['tournament']}, {r['country']})"
    for r in all_events.iter_rows(named=True)
}
picked = st.selectbox("Event", ids, index=ids.index(sr_id) if sr_id in ids else None, format_func=labels.get,
                      key=f"event_pick_{sr_id}", placeholder="Pick an event (or select a row on Odds comparison)")
if picked and picked != sr_id:
    st.session_state["event_sr_id"] = picked
    st.query_params["sr_id"] = picked
    st.rerun()
if not sr_id:
    st.title("Event detail")
    st.info("Pick an event above, or select a row on the **Odds comparison** page.")
    st.stop()

info = _shared.fresh("event_info", sr_id)
if info is None:
    st.title("Event detail")
    st.warning(f"Event `{sr_id}` is not in the database (it may have been cleaned up after kickoff).")
    st.stop()

st.query_params["sr_id"] = sr_id
st.title(f"{info['home']} – {info['away']}")
now = views.utcnow()
kickoff = info["kickoff"]
started = " (started)" if kickoff <= now else f" (in {_shared.duration((kickoff - now).total_seconds())})"
listed = ", ".join(f"{views.BOOK_LABELS[b]} `{info['book_ids'][b]}`" for b in views.BOOKS if b in info["book_ids"])
head = st.columns([5, 1])
head[0].markdown(
    f"**{info['tournament']}** · {info['country']} · kickoff **{_shared.local_time(kickoff, '%a %d %b %Y %H:%M')}**"
    f"{started}  \nSportRadar `{sr_id}` · listed on {listed or 'no book'}"
)
if head[1].button("Refresh this event", key="refresh_event", help="Re-scrape this event on every book now"):
    _shared.request_run("refresh_event", {"sr_id": sr_id}, "refresh_request")
_shared.request_state("refresh_request")

prices = _shared.fresh("event_prices", sr_id)
markets = views.event_markets(prices, _shared.display_tz())
if markets.is_empty():
    st.info("No mapped prices stored for this event yet — press **Refresh this event**.")
    st.stop()
tier = tier_of(kickoff, now, _shared.tiers_in_force())  # tiers: each price's age against its promise
markets = views.with_staleness(markets, now, tier.promise_s if tier else None)
markets = _shared.local(markets, *[views.seen_column(b) for b in views.BOOKS])

query = st.text_input("Search markets", key="market_search", placeholder="e.g. o25, btts, handicap -1, corners")
found = views.search_markets(markets, query)
tabs = views.category_tabs(found)
pairs = markets.select("_market", "_line").unique().height
st.caption(f"{pairs} markets/lines · best price per outcome highlighted · rows tinted red where a competitor's "
           f"margin is more than {views.MARGIN_ALERT_POINTS:g} points below BetPawa's · "
           + (f"{tier.name} tier: refreshed every {tier.interval_s / 60:g} min, prices older than "
              f"{tier.promise_s / 60:g} min in amber" if tier else "started: no longer refreshed"))

if not tabs:
    st.warning(f"No market matches “{query}” — try a shorter word or an abbreviation such as o25 or btts.")
else:
    config = _shared.odds_config(found)
    for tab, (category, count) in zip(st.tabs([f"{CATEGORY_LABELS[c]} ({n})" for c, n in tabs]), tabs):
        with tab:
            rows = views.in_category(found, category)
            st.dataframe(_shared.styled(rows, row_alert="_alert"), hide_index=True, column_config=config,
                         key=f"markets_{category}", placeholder="—", height=min(38 + 35 * rows.height, 640))

st.subheader("History")
pairs_frame = markets.select("_market", "_line", "Market", "Line").unique(subset=["_market", "_line"])
order = {k: i for i, k in enumerate(catalogue.markets)}
options = sorted(((r[0], r[1]) for r in pairs_frame.iter_rows()),
                 key=lambda p: (order.get(p[0], 1e9), p[1] if p[1] is not None else -1e9))
default = options.index(("1x2_ft", None)) if ("1x2_ft", None) in options else 0
chosen = st.selectbox(
    "Market for the charts", options, index=default, key="history_market",
    format_func=lambda p: f"{catalogue.markets[p[0]].name} {views.line_text(p[1])}".strip(),
)
history = _shared.fresh("odds_history", sr_id, chosen[0], chosen[1])
if history.is_empty():
    st.info("No history for this market yet: it appears after the first scrape that stored it.")
    st.stop()

tz = _shared.display_tz()
market = catalogue.markets[chosen[0]]


def wall_clock(frame: pl.DataFrame) -> pl.DataFrame:
    """Times as naive wall-clock in the viewer's zone: Vega shows naive times as given."""
    return frame.with_columns(pl.col("time").dt.convert_time_zone(tz).dt.replace_time_zone(None))


series = views.odds_series(history, market, now)
changes = history.height
st.caption(f"{changes} stored price changes · a flat line is a price confirmed unchanged · gaps = unavailable")
odds_chart = (
    alt.Chart(wall_clock(series))
    .mark_line(interpolate="step-after", point=True)
    .encode(
        x=alt.X("time:T", title=f"time ({tz})"),
        y=alt.Y("odds:Q", title="odds", scale=alt.Scale(zero=False)),
        color=alt.Color("Book:N", scale=BOOK_COLOURS),
        tooltip=["Book", "Outcome", alt.Tooltip("time:T", format="%d %b %H:%M"), alt.Tooltip("odds:Q", format=".2f")],
    )
    .properties(height=180, width=280)
    .facet(facet=alt.Facet("Outcome:N", sort=list(views.outcome_labels(market).values())), columns=3)
    .resolve_scale(y="independent")
)
st.altair_chart(odds_chart, key="odds_history_chart")

margins = views.margin_series(history, now)
if margins.drop_nulls("margin %").is_empty():
    st.caption("No margin history: this market never had a complete, available outcome set at one book.")
else:
    margin_chart = (
        alt.Chart(wall_clock(margins))
        .mark_line(interpolate="step-after", point=True)
        .encode(
            x=alt.X("time:T", title=f"time ({tz})"),
            y=alt.Y("margin %:Q", title="margin %", scale=alt.Scale(zero=False)),
            color=alt.Color("Book:N", scale=BOOK_COLOURS),
            tooltip=["Book", alt.Tooltip("time:T", format="%d %b %H:%M"), alt.Tooltip("margin %:Q", format=".2f")],
        )
        .properties(height=220, title="Margin history")
    )
    st.altair_chart(margin_chart, width="stretch", key="margin_history_chart")
