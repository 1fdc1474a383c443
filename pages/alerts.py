"""Movement alerts: what changed since the analyst last looked, newest first.

The scheduler raises alerts while it stores each batch (``engine.markets.alerts`` says when and
how they are deduplicated); this page lists them, narrows them by kind, book, tournament and
time, acknowledges them, opens the event, and downloads what is shown. The sidebar counts the
ones nobody has acknowledged yet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from engine.config import BOOKS, ConfigError
from engine.markets.alerts import KIND_LABELS, KINDS, market_text, outcome_text
from engine.store import views
from pages import _shared

_shared.page()

#: How far back the list reaches (hours; None = everything kept).
PERIODS: dict[str, float | None] = {"Last hour": 1, "Last 6 hours": 6, "Last 24 hours": 24, "Last 7 days": 24 * 7,
                                    "Everything": None}
#: More rows than anyone reads; narrow the period or the filters for older ones.
MAX_ROWS = 2000
_H = views.HIDDEN


def since(period: str, now: datetime) -> datetime | None:
    """The period's start, to the minute, so the cached read is shared for that minute."""
    hours = PERIODS[period]
    return None if hours is None else (now - timedelta(hours=hours)).replace(second=0, microsecond=0)


def _books(value: str) -> str:
    return ", ".join(views.BOOK_LABELS.get(b, b) for b in value.split(",") if b)


def alert_grid(alerts: pl.DataFrame) -> pl.DataFrame:
    """``Store.alerts`` rows as the page's grid: readable columns, hidden keys for filters."""
    def text(row: dict[str, Any]) -> dict[str, str]:
        outcome = "" if row["outcome"] is None else outcome_text(row["market"], row["outcome"])
        return {"Market": market_text(row["market"], row["line"]), "Outcome": outcome}

    labels = pl.DataFrame([text(r) for r in alerts.select("market", "line", "outcome").iter_rows(named=True)],
                          schema={"Market": pl.String, "Outcome": pl.String})
    match = pl.when(pl.col("home").is_not_null()).then(pl.format("{} – {}", pl.col("home"), pl.col("away")))
    return pl.concat([alerts, labels], how="horizontal").select(
        pl.col("created_at").alias("Raised"),
        pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias("Kind"),
        match.otherwise(pl.col("sr_id")).alias("Match"),
        "Market", "Outcome",
        pl.col("bookmaker").map_elements(_books, return_dtype=pl.String).alias("Book"),
        pl.col("message").alias("Alert"),
        pl.when(pl.col("cleared_at").is_null()).then(pl.lit("open")).otherwise(pl.lit("cleared")).alias("Status"),
        pl.col("cleared_at").alias("Cleared"),
        pl.col("acknowledged_at").alias("Acknowledged"),
        pl.col("kickoff").alias("Kickoff"),
        pl.col("tournament").alias("Tournament"),
        pl.col("country").alias("Country"),
        pl.col("sr_id").alias("SR id"),
        pl.col("id").alias(f"{_H}id"), pl.col("kind").alias(f"{_H}kind"), pl.col("bookmaker").alias(f"{_H}books"),
    )


def narrow(grid: pl.DataFrame, kinds: list[str], books: list[str], tournaments: list[tuple[str, str]]) -> pl.DataFrame:
    cond = pl.lit(True)
    if kinds:
        cond &= pl.col(f"{_H}kind").is_in(kinds)
    if books:
        cond &= pl.col(f"{_H}books").str.split(",").list.eval(pl.element().is_in(books)).list.any()
    grid = grid.filter(cond)
    if tournaments:
        pairs = pl.DataFrame(tournaments, schema={"Country": pl.String, "Tournament": pl.String}, orient="row")
        grid = grid.join(pairs, on=["Country", "Tournament"], how="semi")
    return grid


def acknowledge(ids: list[int], what: str) -> None:
    """Button callback: acknowledge, then show a fresh list with no stale selection."""
    done = _shared.store().acknowledge_alerts(ids)
    _shared.invalidate()
    st.session_state["alerts_grid_no"] = st.session_state.get("alerts_grid_no", 0) + 1
    st.session_state["alerts_done"] = f"Acknowledged {done} alert{'s' if done != 1 else ''} ({what})."


def thresholds_note() -> str:
    base = _shared.settings()
    try:
        s = base.with_saved(_shared.fresh("saved_settings"))
    except ConfigError:
        s = base
    pulls = "on" if s.alert_disappear else "off (Settings)"
    return f"""
**Steam** — a competitor moves an outcome's odds by more than **{s.alert_steam_pct:g}%** within
**{s.alert_steam_window_min:g} minutes** (from its price when the window started, several steps
added up) while BetPawa's price for that outcome has not changed in that window. *Shortened*
means the competitor now pays less: BetPawa, still paying the old price, is the generous one.
Raised once per move; again only if the move turns or grows by another {s.alert_steam_pct:g} points.
Cleared when BetPawa moves that outcome.

**Margin gap** — BetPawa's margin on a market is more than **{s.alert_margin_gap_pts:g} points** above
the lowest competitor margin (margins as on the comparison page; a suspended or incomplete set
has none). Raised once while it lasts; again when it widens by another {s.alert_margin_gap_pts:g}
points, or after it has cleared (the gap closed, or BetPawa pulled the market) and come back.

**Pulled markets** ({pulls}) — a market BetPawa offers that no competitor which had it offers any
more, or a market BetPawa pulled while every competitor quoting it still offers it. A book that
took the whole event off is a coverage change, not a pulled market. Cleared when the market is
offered again (or pulled on the other side too).

Alerts are evaluated as each scraped batch is stored; the thresholds apply from the next batch.
"""


st.title("Movement alerts")
now = views.utcnow()
top = st.columns([2, 2, 3, 2, 2])
period = top[0].selectbox("Raised", list(PERIODS), index=2, key="alerts_period")
kinds = top[1].multiselect("Kind", list(KINDS), format_func=lambda k: KIND_LABELS[k], key="alerts_kinds",
                           placeholder="All kinds")
books = top[3].multiselect("Book", list(BOOKS), format_func=lambda b: views.BOOK_LABELS[b], key="alerts_books",
                           placeholder="All books")
with top[4]:
    st.write("")
    include_acknowledged = st.toggle("Include acknowledged", value=False, key="alerts_all")

alerts = _shared.store_live("alerts", since(period, now), (), (), (), not include_acknowledged, MAX_ROWS)
grid = alert_grid(alerts) if not alerts.is_empty() else pl.DataFrame()
tournament_options = ([] if grid.is_empty() else
                      grid.select("Country", "Tournament").drop_nulls().unique().sort(["Country", "Tournament"]).rows())
tournaments = top[2].multiselect("Tournament", tournament_options, format_func=lambda t: f"{t[1]} · {t[0]}",
                                 key="alerts_tournaments", placeholder="All tournaments")

done = st.session_state.pop("alerts_done", None)
if done:
    st.success(done)
if grid.is_empty():
    which = "unacknowledged alerts" if not include_acknowledged else "alerts"
    st.info(f"No {which} raised in this period ({period.lower()}). Alerts are raised as the scheduler stores "
            "each scraped batch — widen the period, include acknowledged ones, or check the thresholds in "
            "**Settings**.")
    with st.expander("How alerts are raised"):
        st.markdown(thresholds_note())
    st.stop()

shown = narrow(grid, kinds, books, tournaments)
capped = f" (the newest {MAX_ROWS}: narrow the period for older ones)" if alerts.height >= MAX_ROWS else ""
st.caption(f"{shown.height} of {grid.height} alerts shown{capped} · newest first · "
           f"times in {_shared.display_tz()} · "
           "select rows to acknowledge them, one row to open its event")

visible = _shared.local(shown, "Raised", "Cleared", "Acknowledged", "Kickoff")
key = f"alerts_grid_{st.session_state.get('alerts_grid_no', 0)}"
picked = st.dataframe(
    views.shown(visible), hide_index=True, key=key, on_select="rerun", selection_mode="multi-row", placeholder="—",
    height=min(38 + 35 * max(visible.height, 1), 600),
    column_config={
        "Raised": st.column_config.DatetimeColumn("Raised", format="ddd D MMM, HH:mm:ss"),
        "Alert": st.column_config.TextColumn("Alert", width="large"),
        "Cleared": st.column_config.DatetimeColumn("Cleared", format="HH:mm", help="when the condition stopped"),
        "Acknowledged": st.column_config.DatetimeColumn("Acknowledged", format="ddd D MMM, HH:mm"),
        "Kickoff": st.column_config.DatetimeColumn("Kickoff", format="ddd D MMM, HH:mm"),
    },
)
rows = picked.selection.rows if picked else []
selected = shown[rows] if rows else shown.clear()
pending = shown.filter(pl.col("Acknowledged").is_null())
buttons = st.columns([2, 2, 2, 3])
picked_ids = selected.filter(pl.col("Acknowledged").is_null())[f"{_H}id"].to_list()
buttons[0].button(f"Acknowledge selected ({len(picked_ids)})", key="alerts_ack_selected", disabled=not picked_ids,
                  on_click=acknowledge, args=(picked_ids, "selected"), type="primary")
buttons[1].button(f"Acknowledge all shown ({pending.height})", key="alerts_ack_shown", disabled=pending.is_empty(),
                  on_click=acknowledge, args=(pending[f"{_H}id"].to_list(), "all shown"))
if buttons[2].button("Open event", key="alerts_open", disabled=selected.height != 1,
                     help="select exactly one alert"):
    _shared.go_to_event(selected["SR id"][0])

_shared.downloads(_shared.local(shown, "Raised", "Cleared", "Acknowledged", "Kickoff"),
                  f"oddsdesk-alerts-{now:%Y%m%d-%H%M}", key="alerts")
with st.expander("How alerts are raised"):
    st.markdown(thresholds_note())
