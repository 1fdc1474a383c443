"""Coverage: which events and tournaments each book has that BetPawa lacks (and the reverse),
the SportRadar-id match rate, and the markets we cannot map yet.

The summary is computed before the table filters, so its numbers do not jump while filtering
(the earlier tool's BUG-017); counts are per distinct SportRadar id, never per row.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from engine.store import views
from pages import _shared

_shared.page()

GAPS = {
    "all": "All tournaments",
    "competitor_only": "Competitors have events BetPawa lacks",
    "betpawa_only": "BetPawa has events a competitor lacks",
}

st.title("Coverage")
cov = _shared.fresh("coverage_events")
if cov.is_empty():
    st.info("No events yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + ".")
    st.stop()

include_started = st.toggle("Include started events", value=False, key="cov_started")
now = views.utcnow()
scope = cov if include_started else cov.filter(pl.col("kickoff") >= now)

summary = views.coverage_summary(scope)
cards = st.columns(len(views.BOOKS) + 1)
on_all = int(scope.select(pl.all_horizontal(pl.col(b) for b in views.BOOKS).sum()).item()) if scope.height else 0
cards[0].metric("Events", scope.height, help="distinct SportRadar ids")
cards[0].caption(f"{on_all} on all three books")
for card, row in zip(cards[1:], summary.iter_rows(named=True)):
    card.metric(row["Book"], row["Events"])
    if row["Book"] != views.BOOK_LABELS[views.REFERENCE]:
        rate = f"{row['Match rate %']:.1f}%" if row["Match rate %"] is not None else "—"
        card.caption(f"match rate {rate} · {row['Not on BetPawa']} events and "
                     f"{row['Tournaments not on BetPawa']} tournaments not on BetPawa · lacks "
                     f"{row['BetPawa has, book lacks']} of BetPawa's events")
st.dataframe(summary, hide_index=True, key="coverage_summary", column_config={
    "Match rate %": st.column_config.NumberColumn(
        "Match rate %", format="%.1f%%", help="share of the book's events BetPawa lists under the same SportRadar id"),
})

st.subheader("Tournaments")
f = st.columns([2, 2, 3])
countries = f[0].multiselect("Country", sorted(scope["country"].unique().to_list()), key="cov_countries",
                             placeholder="All countries")
gap = f[1].selectbox("Show", list(GAPS), format_func=GAPS.get, key="cov_gap")
search = f[2].text_input("Search tournament or team", key="cov_search")

rows = scope.filter(pl.col("country").is_in(countries)) if countries else scope
if search.strip():
    q = views.fold(search.strip())
    rows = rows.filter(views.fold_expr(pl.format("{} {} {}", pl.col("tournament"), pl.col("home"), pl.col("away")))
                       .str.contains(q, literal=True))
tournaments = views.tournament_coverage(rows)
if not tournaments.is_empty():
    comp_only = pl.sum_horizontal(pl.col(f"{views.BOOK_LABELS[b]} not on BetPawa") for b in views.COMPETITORS)
    bp_only = pl.sum_horizontal(pl.col(f"Missing on {views.BOOK_LABELS[b]}") for b in views.COMPETITORS)
    if gap == "competitor_only":
        tournaments = tournaments.filter(comp_only > 0)
    elif gap == "betpawa_only":
        tournaments = tournaments.filter(bp_only > 0)
if tournaments.is_empty():
    st.caption("No tournament matches these filters.")
else:
    st.dataframe(tournaments, hide_index=True, key="coverage_tournaments")
    _shared.downloads(tournaments, "oddsdesk-coverage-tournaments", key="cov_tournaments")

st.subheader("Events")
presence = st.selectbox("Events", list(views.COVERAGE_CHOICES), format_func=views.COVERAGE_CHOICES.get,
                        key="cov_presence")
ev = rows
if presence == "all_books":
    ev = ev.filter(pl.all_horizontal(pl.col(b) for b in views.BOOKS))
elif presence.startswith("missing:"):
    ev = ev.filter(~pl.col(presence.split(":", 1)[1]))
ev_table = _shared.local(ev, "kickoff").select(
    pl.col("kickoff").alias("Kickoff"), pl.col("country").alias("Country"), pl.col("tournament").alias("Tournament"),
    pl.format("{} – {}", pl.col("home"), pl.col("away")).alias("Match"),
    *[pl.col(b).alias(views.BOOK_LABELS[b]) for b in views.BOOKS],
    pl.col("sr_id").alias("SR id"),
).sort("Kickoff")
st.caption(f"{ev_table.height} events · select a row to open it")
picked = st.dataframe(ev_table, hide_index=True, key="coverage_events", on_select="rerun",
                      selection_mode="single-row", column_config={
                          "Kickoff": st.column_config.DatetimeColumn("Kickoff", format="ddd D MMM, HH:mm"),
                          **{views.BOOK_LABELS[b]: st.column_config.CheckboxColumn(views.BOOK_LABELS[b])
                             for b in views.BOOKS},
                      })
if picked and picked.selection.rows:
    _shared.go_to_event(ev_table["SR id"][picked.selection.rows[0]])
_shared.downloads(ev_table, "oddsdesk-coverage-events", key="cov_events")

st.subheader("Unmapped markets")
unmapped = _shared.slow("unmapped")
if unmapped.is_empty():
    st.caption("Every market seen so far maps to the catalogue (or no run has stored any yet).")
else:
    u = st.columns([2, 2, 3])
    books = u[0].multiselect("Book", sorted(unmapped["bookmaker"].unique().to_list()), key="unm_books",
                             format_func=lambda b: views.BOOK_LABELS.get(b, b), placeholder="All books")
    reasons = u[1].multiselect("Reason", sorted(unmapped["reason"].unique().to_list()), key="unm_reasons",
                               placeholder="All reasons")
    text = u[2].text_input("Search market id or name", key="unm_search")
    shown = unmapped
    if books:
        shown = shown.filter(pl.col("bookmaker").is_in(books))
    if reasons:
        shown = shown.filter(pl.col("reason").is_in(reasons))
    if text.strip():
        q = views.fold(text.strip())
        shown = shown.filter(views.fold_expr(pl.format("{} {}", pl.col("market_id"), pl.col("name")))
                             .str.contains(q, literal=True))
    per_book = unmapped.group_by("bookmaker").agg(pl.len().alias("kinds"), pl.col("occurrences").sum())
    st.caption(" · ".join(f"{views.BOOK_LABELS.get(r[0], r[0])}: {r[1]} unmapped market kinds, {r[2]} occurrences"
                          for r in per_book.sort("bookmaker").iter_rows()))
    table = _shared.local(shown, "first_seen", "last_seen").select(
        pl.col("bookmaker").replace_strict(views.BOOK_LABELS, default=pl.col("bookmaker")).alias("Book"),
        pl.col("market_id").alias("Market id"), pl.col("name").alias("Name"), pl.col("reason").alias("Reason"),
        pl.col("occurrences").alias("Occurrences"), pl.col("first_seen").alias("First seen"),
        pl.col("last_seen").alias("Last seen"), pl.col("detail").alias("Sample"),
    )
    st.dataframe(table, hide_index=True, key="unmapped", column_config={
        "First seen": st.column_config.DatetimeColumn("First seen", format="D MMM HH:mm"),
        "Last seen": st.column_config.DatetimeColumn("Last seen", format="distance"),
    })
    _shared.downloads(table, "oddsdesk-unmapped-markets", key="unmapped")
