"""Scrape runs: the run list live (every 2 s) with the running run's progress, and one run's detail.

Per-book counts, timings and errors come from the run's summary (written by the pipeline when
the run finishes); per-event outcomes from ``event_scrape_status``. "Retry failed events" asks
the scheduler for a run of exactly the failed (event, book) pairs.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import streamlit as st

from engine.store import views
from pages import _shared

_shared.page()

STATUS_ICONS = {"COMPLETED": "🟢", "PARTIAL": "🟡", "RUNNING": "🔄", "FAILED": "🔴",
                "CONNECTION_FAILED": "🔌", "CANCELLED": "⚪"}

st.title("Scrape runs")
shown_kind = st.selectbox(  # tiers: tier runs are frequent; pick the kind of run to list
    "Show", list(views.RUN_KINDS), key="run_kind",
    help="Full cycles, discovery runs (event lists only), tier runs (kind tier:<tiers refreshed>), retries")
KIND = views.RUN_KINDS[shown_kind]


@st.fragment(run_every=2)
def run_list(kind: str | None) -> None:
    runs = _shared.live("runs", 50, kind)
    if runs.is_empty():
        st.info("No run yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + "." if kind is None
                else f"No run of this kind ({shown_kind.lower()}) yet.")
        return
    for r in runs.filter(pl.col("status") == "RUNNING").iter_rows(named=True):
        latest = views.latest_progress(_shared.live("run_progress", r["id"]))
        done, total = (latest or {}).get("batches_done"), (latest or {}).get("batches_total")
        fraction = min(1.0, done / total) if done is not None and total else 0.0
        running_for = _shared.duration((views.utcnow() - r["started_at"]).total_seconds())
        label = f"Run #{r['id']} ({r['trigger']}, {r['kind']}) running for {running_for}"
        if total:
            label += f" — {done}/{total} batches stored"
        st.progress(fraction, text=label)
        if latest and latest.get("message"):
            st.caption(f"latest: {latest['message']} ({_shared.ago(latest.get('at'))})")
    table = _shared.local(runs, "started_at", "finished_at").select(
        pl.col("id").alias("Run"),
        pl.col("status").replace_strict(STATUS_ICONS, default="").alias(" "),
        pl.col("status").alias("Status"),
        pl.col("trigger").alias("Trigger"),
        pl.col("kind").alias("Kind"),
        pl.col("started_at").alias("Started"),
        pl.col("seconds").alias("Duration s"),
        pl.col("events_total").alias("Events"),
        pl.col("events_scraped").alias("Scraped"),
        pl.col("events_failed").alias("With failures"),
        pl.col("error").alias("Error"),
    )
    st.dataframe(table, hide_index=True, key="runs_table", placeholder="", column_config={
        "Started": st.column_config.DatetimeColumn("Started", format="ddd D MMM, HH:mm:ss"),
        "Duration s": st.column_config.NumberColumn("Duration s", format="%.1f"),
    })
    c24 = runs.filter(pl.col("started_at") >= views.utcnow() - timedelta(hours=24))
    done = runs.filter(pl.col("status") != "RUNNING")
    st.caption(f"{c24.height} runs in the last 24 h · average duration "
               f"{_shared.duration(done['seconds'].mean() if done.height else None)} (last {runs.height} runs)")


run_list(KIND)

runs = _shared.live("runs", 50, KIND)
if runs.is_empty():
    st.stop()

st.subheader("Run detail")
ids = runs["id"].to_list()
labels = {r["id"]: f"#{r['id']} · {r['status']} · {_shared.local_time(r['started_at'], '%d %b %H:%M:%S')} · "
                   f"{r['trigger']} ({r['kind']})" for r in runs.iter_rows(named=True)}
run_id = st.selectbox("Run", ids, format_func=labels.get, key="run_id")


@st.fragment(run_every=2)
def run_detail(run_id: int) -> None:
    run = _shared.live("run_detail", run_id)
    if run is None:
        st.warning(f"Run #{run_id} is gone (cleaned up by retention).")
        return
    scraped, failures = run.get("events_scraped") or 0, run.get("events_failed") or 0
    if run["status"] == "RUNNING":  # the run row is written at the end; count the stored batches
        rows = _shared.live("event_status", run_id)
        if not rows.is_empty():
            scraped = rows.filter(pl.col("books_scraped").list.len() > 0).height
            failures = rows.filter(pl.col("has_failure")).height
    metrics = st.columns(5)
    metrics[0].metric("Status", run["status"])
    end = run.get("finished_at") or views.utcnow()
    metrics[1].metric("Duration", _shared.duration((end - run["started_at"]).total_seconds()))
    metrics[2].metric("Events", run.get("events_total") or 0)
    metrics[3].metric("Scraped", scraped)
    metrics[4].metric("With failures", failures)
    if run.get("error"):
        st.error(run["error"])
    books = views.run_books(run)
    if books.is_empty():
        st.caption("Per-book counts appear when the run finishes.")
    else:
        st.dataframe(books, hide_index=True, key="run_books", placeholder="—")
    progress = _shared.live("run_progress", run_id)
    if not progress.is_empty():
        with st.expander(f"Progress log ({progress.height} events)"):
            st.dataframe(_shared.local(progress, "at").select("seq", "at", "kind", "message", "batches_done",
                                                              "batches_total"),
                         hide_index=True, column_config={
                             "at": st.column_config.DatetimeColumn("at", format="HH:mm:ss.SSS")})


run_detail(run_id)

status = _shared.live("event_status", run_id)
failed = status.filter(pl.col("has_failure")) if not status.is_empty() else status
running = runs.filter(pl.col("id") == run_id)["status"].to_list() == ["RUNNING"]
st.markdown(f"**Events of run #{run_id}** — {status.height} stored, {failed.height} with a failed book"
            + (" (as of page load: the run is still going)" if running else ""))
retry = st.button("Retry failed events", key="retry_failed", disabled=failed.is_empty(),
                  help="Re-fetch exactly the failed (event, book) pairs of this run")
if retry:
    _shared.request_run("retry_failed", {"run_id": int(run_id)}, "retry_request")
_shared.request_state("retry_request")

if status.is_empty():
    st.caption("This run is still fetching its first batch; its events appear as batches are stored."
               if running else "No per-event rows for this run (it stopped before storing a batch).")
else:
    only_failed = st.toggle("Only events with failures", value=not failed.is_empty(), key=f"only_failed_{run_id}")
    rows = failed if only_failed else status
    if rows.is_empty():
        st.caption("No event of this run failed.")
    else:
        show = rows.select(
            pl.col("sr_id").alias("SR id"),
            pl.col("match").alias("Match"),
            pl.col("tournament").alias("Tournament"),
            pl.col("books_requested").list.join(", ").alias("Requested"),
            pl.col("books_scraped").list.join(", ").alias("Scraped"),
            pl.col("books_failed").list.join(", ").alias("Failed"),
            pl.col("errors").alias("Errors"),
            pl.col("duration_ms").alias("ms"),
        )
        st.dataframe(show, hide_index=True, key="event_status", placeholder="")
        _shared.downloads(show, f"oddsdesk-run-{run_id}-events", key="events")
