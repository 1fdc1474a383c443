"""Storage: how big the database is, what fills it, how fast it grows, and whether retention works.

The earlier tool reached 12 GB of Postgres in 15 days without anyone noticing until it hurt;
here the size, the daily growth of the odds history and the last retention cleanup (written by
the scheduler as the ``last_cleanup`` setting) are one click away.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from engine.config import ConfigError
from engine.store import Store, views
from engine.store.archive import archive_summary
from pages import _shared

_shared.page()

PAGE_SETTINGS = "pages/settings.py"
#: The scheduler cleans up hourly; twice that without a cleanup means it is not running.
CLEANUP_OVERDUE = timedelta(hours=2)

TABLE_NOTES = {
    "odds_history": "every price change (the time series); trimmed to the history retention",
    "odds_current": "the latest price per event, book, market, line and outcome",
    "events": "one row per SportRadar match",
    "bookmaker_events": "each book's event id for a match",
    "scrape_runs": "one row per scrape run; trimmed to the run retention",
    "run_progress": "progress messages of each run",
    "event_scrape_status": "per run and event: which books were scraped or failed",
    "unmapped_markets": "markets the catalogue does not map yet, with counts",
    "settings": "values saved in the app, scheduler status, last cleanup",
    "run_requests": "Scrape now / Retry / Refresh requests from the app",
    "alerts": "movement, margin and coverage alerts, with when they cleared and were acknowledged",
}

_PER_DAY_SQL = """
SELECT CAST(observed_at AS DATE) AS day, count(*) AS rows
FROM odds_history_data GROUP BY day ORDER BY day
"""
_SPAN_SQL = "SELECT min(observed_at) AS oldest, max(observed_at) AS newest FROM odds_history_data"


def storage_facts(store: Store) -> dict[str, Any]:
    """Size, rows per table, history rows per (UTC) day and the saved settings, in one go."""
    span = store.query(_SPAN_SQL)
    return {
        "bytes": store.db_bytes(),
        "counts": store.table_counts(),
        "per_day": store.query(_PER_DAY_SQL),
        "oldest": span["oldest"][0] if span.height else None,
        "saved": store.get_settings(),
    }


READS = {"storage_facts": storage_facts,
         "archive_summary": lambda store: archive_summary(store.path)}  # archive: files only, no DB read


@st.cache_data(ttl=_shared.FRESH_TTL, show_spinner=False)
def _read(path: str, view: str, *args: Any) -> Any:
    """``_shared.fresh`` for this page's own reads (``path`` keys the cache per database)."""
    return READS[view](_shared.store(), *args)


def size_text(n: int) -> str:
    """Decimal units, so the number matches ``ls -l`` divided by a power of ten."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


st.title("Storage")
facts = _shared.guarded(_read, "storage_facts")
counts: dict[str, int] = facts["counts"]
per_day: pl.DataFrame = facts["per_day"]
saved: dict[str, Any] = facts["saved"]
now = views.utcnow()

cards = st.columns(4)
cards[0].metric("Database file", size_text(facts["bytes"]), help="the DuckDB file plus its write-ahead log")
cards[0].caption(f"{facts['bytes']:,} bytes at `{_shared.store().label}`")
cards[1].metric("Rows, all tables", f"{sum(counts.values()):,}")
cards[2].metric("Odds history rows", f"{counts.get('odds_history', 0):,}")
cards[3].metric("Oldest price change kept", _shared.ago(facts["oldest"], now) if facts["oldest"] else "—")

st.subheader("Rows per table")
tables = pl.DataFrame(
    {"Table": list(counts), "Rows": list(counts.values()), "Holds": [TABLE_NOTES.get(t, "") for t in counts]},
    schema={"Table": pl.String, "Rows": pl.Int64, "Holds": pl.String},
).sort("Rows", descending=True)
st.dataframe(tables, hide_index=True, key="storage_tables",
             column_config={"Rows": st.column_config.NumberColumn("Rows", format="localized")})

st.subheader("Growth per day")
base = _shared.settings()
try:
    in_force = base.with_saved(saved)
except ConfigError:
    in_force = base
if per_day.is_empty():
    st.info("No odds history yet — press **Scrape now** in the sidebar; " + _shared.START_HINT + ".")
else:
    chart = (
        alt.Chart(per_day.with_columns(pl.col("day").cast(pl.String)))
        .mark_bar(color="#1f7a3d", size=28)
        .encode(
            x=alt.X("day:O", title="day (UTC)", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("rows:Q", title="odds history rows"),
            tooltip=[alt.Tooltip("day:O", title="day"), alt.Tooltip("rows:Q", format=",")],
        )
        .properties(height=260)
    )
    st.altair_chart(chart, width="stretch", key="storage_growth")
    recent = per_day.tail(7)
    average = recent["rows"].mean()
    st.caption(f"Price changes stored per UTC day. Average over the last {recent.height} day(s) with data: "
               f"{average:,.0f} rows — at that rate the {in_force.history_retention_days}-day history window "
               f"holds about {average * in_force.history_retention_days:,.0f} rows.")

st.subheader("Retention")
source = {k: ("saved in the app" if k in saved else "environment / default")
          for k in ("history_retention_days", "run_retention_days")}
st.dataframe(
    pl.DataFrame({
        "Setting": ["Odds history kept", "Runs kept"],
        "Days": [in_force.history_retention_days, in_force.run_retention_days],
        "From": [source["history_retention_days"], source["run_retention_days"]],
        "Deletes": ["price changes older than this, and events that kicked off before it",
                    "runs (with progress and per-event rows) and finished requests older than this"],
    }),
    hide_index=True, key="storage_retention",
)

cleanup = saved.get("last_cleanup") or {}
ran_at = _shared.parse_time(cleanup.get("at"))
archived = (cleanup.get("deleted") or {}).get("odds_history_archived")  # archive: rows the last cleanup archived
if ran_at is None:
    st.info("Retention cleanup has not run yet: the scheduler runs it a minute after it starts, then hourly "
            "(start it with `oddsdesk scheduler` or `oddsdesk up`).")
else:
    deleted = {k: int(v) for k, v in (cleanup.get("deleted") or {}).items()
               if not k.endswith(("_clustered", "_archived"))}
    clustered = int((cleanup.get("deleted") or {}).get("odds_history_clustered") or 0)
    note = f"; odds history re-sorted ({clustered:,} rows rewritten)" if clustered else ""
    note += f"; {int(archived):,} history rows archived to Parquet first" if archived is not None else ""
    message = (f"Last cleanup {_shared.ago(ran_at, now)} ({_shared.local_time(ran_at)}): "
               f"deleted {sum(deleted.values()):,} rows{note}.")
    if cleanup.get("error"):  # archive: a cleanup that failed, e.g. could not write the archive
        st.error(f"Last cleanup {_shared.ago(ran_at, now)} ({_shared.local_time(ran_at)}) failed: "
                 f"{cleanup['error']}. A failed archive deletes nothing; the next hourly cleanup tries again.")
    elif now - ran_at > CLEANUP_OVERDUE:
        st.warning(message + " It should run hourly — is the scheduler running (`oddsdesk scheduler`)?")
    else:
        st.success(message)
    if any(deleted.values()):
        st.dataframe(
            pl.DataFrame({"Table": list(deleted), "Rows deleted": list(deleted.values())},
                         schema={"Table": pl.String, "Rows deleted": pl.Int64}).filter(pl.col("Rows deleted") > 0),
            hide_index=True, key="storage_cleanup",
        )
st.page_link(PAGE_SETTINGS, label="Change retention on the Settings page", icon="⚙️")

# --- archive ----------------------------------------------------------------------------------
st.subheader("Archive")
arch = _shared.guarded(_read, "archive_summary")
if in_force.archive_history:
    st.caption(f"On: each hourly cleanup first writes the price changes it is about to delete to Parquet in "
               f"`{arch['dir']}` (one folder per UTC day), and deletes them only once they are on disk. The SQL "
               "notebook reads them as `odds_history_archive`.")
else:
    st.info("Off: price changes past the retention window are deleted. Turn on **Archive history to Parquet** "
            "on the Settings page to keep them as date-partitioned Parquet the SQL notebook can still query "
            "(archiving happens at the hourly cleanup).")
if arch["files"]:
    cards = st.columns(4)
    cards[0].metric("Archive size", size_text(arch["bytes"]), help=f"{arch['files']:,} Parquet files")
    cards[1].metric("Days archived", f"{len(arch['days']):,}")
    cards[2].metric("Rows archived", f"{arch['rows']:,}")
    last_run = (f"{_shared.ago(ran_at, now)} ({int(archived):,} rows)" if ran_at is not None and archived is not None
                else _shared.ago(arch["newest_file_at"], now))
    cards[3].metric("Last archive run", last_run, help="the last cleanup that archived; else the newest file")
    days = pl.DataFrame(
        [(day, d["files"], d["rows"], d["bytes"]) for day, d in sorted(arch["days"].items(), reverse=True)],
        schema={"Day (UTC)": pl.String, "Files": pl.Int64, "Rows": pl.Int64, "Bytes": pl.Int64}, orient="row")
    st.dataframe(days, hide_index=True, key="storage_archive_days", column_config={
        c: st.column_config.NumberColumn(c, format="localized") for c in ("Rows", "Bytes")})
elif in_force.archive_history:
    st.caption("Nothing archived yet: history reaches the archive once it is older than the retention window.")
