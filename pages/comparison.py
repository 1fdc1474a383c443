"""Odds comparison (home): one row per event, the chosen market's prices per book, BetPawa's gap.

Colours follow market-mapping.md §4.2: BetPawa cells green/red against the best competitor
(0.01 tolerance), a competitor cell light green where it beats BetPawa, margins against the
lowest competitor margin (0.1 points), a competitor margin 2+ points lower flagged dark red.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import streamlit as st

from engine.markets.catalogue import load_catalogue
from engine.pipeline.tiers import promise_expr
from engine.store import views
from pages import _shared

_shared.page()

WHEN = ("Today", "Tomorrow", "Next 7 days", "All dates", "Custom")
#: Rows per grid page: a styled grid costs ~0.3 ms per row to send, so 1,500 rows at once would lag.
PAGE_ROWS = 250

st.title("Odds comparison")
catalogue = load_catalogue()

lines = _shared.fresh("market_lines")
choices = list(dict.fromkeys([*views.QUICK_MARKETS, *views.market_choices(lines)]))


def _market_label(choice: tuple[str, float | None]) -> str:
    market, line = choice
    return f"{catalogue.markets[market].name} {views.line_text(line)}".strip()


top = st.columns([3, 4, 2])
market, line = top[0].selectbox("Market", choices, format_func=_market_label, key="market",
                                help="Popular markets first, then every mapped market and line that has prices")
when = top[1].radio("Kickoff", WHEN, index=2, horizontal=True, key="when")
include_started = top[2].toggle("Include started", value=False, key="include_started")

now = views.utcnow()
today = _shared.local_today(now)
kickoff_from = kickoff_to = None
if when == "Today":
    kickoff_from, kickoff_to = _shared.local_days(today, 1)
elif when == "Tomorrow":
    kickoff_from, kickoff_to = _shared.local_days(today + timedelta(days=1), 1)
elif when == "Next 7 days":
    kickoff_from, kickoff_to = _shared.local_days(today, 7)
elif when == "Custom":
    picked = st.date_input("From – to", (today, today + timedelta(days=2)), key="dates")
    if isinstance(picked, (tuple, list)) and len(picked) == 2:
        kickoff_from, kickoff_to = _shared.local_days(picked[0], (picked[1] - picked[0]).days + 1)

grid = _shared.fresh("comparison", market, line)
if grid.is_empty():
    st.info("No events yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + ".")
    st.stop()

filters = st.columns([2, 3, 2, 2, 2])
countries = filters[0].multiselect("Country", sorted(grid["Country"].unique().to_list()), key="countries",
                                   placeholder="All countries")
scope = grid.filter(pl.col("Country").is_in(countries)) if countries else grid
tournaments = filters[1].multiselect(
    "Tournament", views.tournament_options(scope), format_func=lambda t: f"{t[1]} · {t[0]}", key="tournaments",
    placeholder="All tournaments")
team = filters[2].text_input("Team", key="team", placeholder="Search a team")
coverage = filters[3].selectbox("Books", list(views.COVERAGE_CHOICES), format_func=views.COVERAGE_CHOICES.get,
                                key="coverage")
order = filters[4].selectbox("Sort by", list(views.SORTS), format_func=views.SORTS.get, key="sort")

shown = views.sort_grid(views.filter_grid(grid, views.GridFilter(
    kickoff_from=kickoff_from, kickoff_to=kickoff_to, countries=tuple(countries), tournaments=tuple(tournaments),
    team=team, coverage=coverage, include_started=include_started, now=now,
)), order)
shown = views.with_staleness(shown, now, promise_expr(pl.col("_kickoff"), now, _shared.tiers_in_force()))  # tiers
empty_pulled = [c for c in (views.pulled_column(b) for b in views.BOOKS) if shown[c].null_count() == shown.height]
shown = _shared.local(shown.drop(empty_pulled), "Kickoff", *[views.seen_column(b) for b in views.BOOKS],
                      *[views.pulled_column(b) for b in views.BOOKS])

if shown.is_empty():
    st.warning("No events match these filters — widen the kickoff range, clear a filter or include started events.")
    st.stop()

pages = max(1, -(-shown.height // PAGE_ROWS))
page = st.session_state.get(f"page_{pages}", 1) if pages > 1 else 1
first = (page - 1) * PAGE_ROWS
visible = shown.slice(first, PAGE_ROWS)
priced = shown.filter(pl.any_horizontal(pl.col(views.seen_column(b)).is_not_null() for b in views.BOOKS)).height
stale = shown.filter(pl.any_horizontal(  # tiers
    pl.col(views.status_column(views.age_column(b))).is_not_null() for b in views.BOOKS)).height
st.caption(f"{shown.height} events · {priced} with prices for this market · "
           f"{stale} with a price older than its refresh tier promises (amber) · "
           f"rows {first + 1}–{first + visible.height} · times in {_shared.display_tz()} · select a row to open the event")

selection = st.dataframe(
    _shared.styled(visible),
    hide_index=True,
    column_config=_shared.odds_config(visible) | {
        "Match": st.column_config.TextColumn("Match", pinned=True),
        "sr_id": st.column_config.TextColumn("SR id"),
    },
    on_select="rerun",
    selection_mode="single-row",
    key="grid",
    placeholder="—",
    height=min(38 + 35 * visible.height, 700),
)
if pages > 1:
    st.pagination(pages, key=f"page_{pages}")
rows = selection.selection.rows if selection else []
if rows:
    _shared.go_to_event(visible["sr_id"][rows[0]])

market_name = f"{market}{'_' + views.line_text(line) if line is not None else ''}"
_shared.downloads(shown, f"oddsdesk-comparison-{market_name}-{now:%Y%m%d-%H%M}", key="comparison")
