"""Settings: the scheduler's runtime knobs, validated exactly like the environment, saved to the store.

The scheduler re-reads the ``settings`` table every 10 s and applies a new interval,
concurrency, pacing or retention without a restart. A value ``Settings.with_overrides``
rejects is shown next to the form and nothing is saved.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from engine.config import BOOKS, RUNTIME_KEYS, ConfigError
from engine.store import views
from pages import _shared

_shared.page()

LABELS: dict[str, tuple[str, str]] = {
    "scrape_interval_min": ("Scrape interval (minutes)", "in refresh mode full, a full cycle starts this often; a late one is not doubled"),
    "batch_size": ("Batch size (events)", "events fetched and stored per batch (one write transaction each)"),
    **{f"{b}_concurrency": (f"{views.BOOK_LABELS[b]} concurrency", "requests in flight at once to this book")
       for b in BOOKS},
    **{f"{b}_delay_ms": (f"{views.BOOK_LABELS[b]} pacing (ms)", "pause after each request, per concurrency slot")
       for b in BOOKS},
    "history_retention_days": ("Odds history kept (days)", "price changes older than this are deleted"),
    "run_retention_days": ("Runs kept (days)", "runs, their progress and per-event rows older than this are deleted"),
    "archive_history": ("Archive history to Parquet", "before cleanup deletes price changes past the window, "  # archive
                        "write them to date-partitioned Parquet beside the database (SQL notebook: odds_history_archive)"),
    # tiers
    "refresh_mode": ("Refresh mode", "tiers: each event as often as its time to kickoff asks (after one full "
                                     "cycle at start-up); full: a full cycle every scrape interval"),
    "tier_near_hours": ("Near tier: kickoff within (hours)", "events this close to kickoff are in the near tier"),
    "tier_near_interval_min": ("Near tier: refresh every (minutes)", "at least 0.5"),
    "tier_day_hours": ("Day tier: kickoff within (hours)", "must be more than the near tier's; later events are far"),
    "tier_day_interval_min": ("Day tier: refresh every (minutes)", "at least 0.5"),
    "tier_far_interval_min": ("Far tier: refresh every (minutes)", "at least 0.5"),
    "discovery_interval_min": ("Discovery every (minutes)", "how often the books' event lists are re-read in tier mode"),
    # alerts
    "alert_steam_pct": ("Steam: competitor move (%)", "a competitor moving an outcome by more than this while "
                                                      "BetPawa stands still is an alert"),
    "alert_steam_window_min": ("Steam: within (minutes)", "the move is measured over this window"),
    "alert_margin_gap_pts": ("Margin gap (points)",
                             "BetPawa's margin this far above the best competitor's is an alert"),
    "alert_disappear": ("Pulled-market alerts",
                        "alert when a market disappears from the competitors or from BetPawa only"),
}

st.title("Settings")
base = _shared.settings()
saved_all = _shared.fresh("saved_settings")
try:
    in_force = base.with_saved(saved_all)
    saved_error = None
except ConfigError as exc:
    in_force, saved_error = base, str(exc)
if saved_error:
    st.warning(f"The saved settings are invalid, so the environment values are in force: {saved_error}")

values: dict[str, Any] = {}
form_col, note_col = st.columns([3, 2])
with form_col, st.form("settings_form"):
    st.markdown("**Schedule**")
    c = st.columns(2)
    values["scrape_interval_min"] = c[0].number_input(
        LABELS["scrape_interval_min"][0], value=float(in_force.scrape_interval_min), step=0.5,
        key="scrape_interval_min", help=LABELS["scrape_interval_min"][1])
    values["batch_size"] = c[1].number_input(LABELS["batch_size"][0], value=int(in_force.batch_size), step=10,
                                             key="batch_size", help=LABELS["batch_size"][1])
    st.markdown("**Refresh by kickoff (tiers)**")  # tiers
    c = st.columns(2)
    values["refresh_mode"] = c[0].selectbox(LABELS["refresh_mode"][0], ["tiers", "full"],
                                            index=["tiers", "full"].index(in_force.refresh_mode), key="refresh_mode",
                                            help=LABELS["refresh_mode"][1])
    values["discovery_interval_min"] = c[1].number_input(
        LABELS["discovery_interval_min"][0], value=float(in_force.discovery_interval_min), step=1.0,
        key="discovery_interval_min", help=LABELS["discovery_interval_min"][1])
    for tier in ("near", "day"):
        c = st.columns(2)
        for col, key, step in ((c[0], f"tier_{tier}_hours", 1.0), (c[1], f"tier_{tier}_interval_min", 0.5)):
            values[key] = col.number_input(LABELS[key][0], value=float(getattr(in_force, key)), step=step, key=key,
                                           help=LABELS[key][1])
    c = st.columns(2)
    values["tier_far_interval_min"] = c[1].number_input(
        LABELS["tier_far_interval_min"][0], value=float(in_force.tier_far_interval_min), step=1.0,
        key="tier_far_interval_min", help=LABELS["tier_far_interval_min"][1])
    st.markdown("**Per bookmaker**")
    for book in BOOKS:
        c = st.columns(2)
        for col, key in zip(c, (f"{book}_concurrency", f"{book}_delay_ms")):
            values[key] = col.number_input(LABELS[key][0], value=int(getattr(in_force, key)), step=1, key=key,
                                           help=LABELS[key][1])
    st.markdown("**Retention**")
    c = st.columns(2)
    for col, key in zip(c, ("history_retention_days", "run_retention_days")):
        values[key] = col.number_input(LABELS[key][0], value=int(getattr(in_force, key)), step=1, key=key,
                                       help=LABELS[key][1])
    values["archive_history"] = st.checkbox(LABELS["archive_history"][0], value=bool(in_force.archive_history),  # archive
                                            key="archive_history", help=LABELS["archive_history"][1])
    st.markdown("**Movement alerts**")  # alerts
    c = st.columns(2)
    for col, key, step in ((c[0], "alert_steam_pct", 1.0), (c[1], "alert_steam_window_min", 5.0),
                           (c[0], "alert_margin_gap_pts", 0.5)):
        values[key] = col.number_input(LABELS[key][0], value=float(getattr(in_force, key)), step=step, key=key,
                                       help=LABELS[key][1])
    values["alert_disappear"] = c[1].checkbox(LABELS["alert_disappear"][0], value=bool(in_force.alert_disappear),
                                              key="alert_disappear", help=LABELS["alert_disappear"][1])
    submitted = st.form_submit_button("Save", type="primary")

with note_col:
    if submitted:
        try:
            base.with_overrides(values)
        except ConfigError as exc:
            st.error(f"Not saved — {exc}")
        else:
            _shared.store().put_settings(values)
            _shared.invalidate()
            st.success("Saved. The scheduler applies the new values within ~10 s, without a restart.")
    st.info("The scheduler re-reads these settings every 10 seconds and applies them without a restart. "
            "Environment variables (`ODDSDESK_…`) give the start-up defaults.")

st.subheader("Values in force")
env = base.runtime_values()
current = _shared.fresh("saved_settings")
current_saved = {k: v for k, v in current.items() if k in RUNTIME_KEYS}
try:
    effective = base.with_saved(current).runtime_values()
except ConfigError:
    effective = env
st.dataframe(
    pl.DataFrame({
        "Setting": [LABELS[k][0] for k in RUNTIME_KEYS],
        "Key": list(RUNTIME_KEYS),
        "In force": [str(effective[k]) for k in RUNTIME_KEYS],
        "Saved in the app": [str(current_saved[k]) if k in current_saved else "" for k in RUNTIME_KEYS],
        "Environment / default": [str(env[k]) for k in RUNTIME_KEYS],
    }),
    hide_index=True, key="settings_in_force",
)
status = current.get("scheduler_status") or {}
if status:
    st.caption(f"Scheduler last reported {_shared.ago(_shared.parse_time(status.get('updated_at')))}"
               + (f", interval {status['interval_min']:g} min" if status.get("interval_min") else ""))
