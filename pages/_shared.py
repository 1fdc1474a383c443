"""What every page of the app shares: the store, cached views, time display, colours, sidebar.

Reads go through ``engine.store.views`` behind ``st.cache_data`` keyed by the database path,
with short TTLs: the scheduler writes every few minutes, the run pages poll every 2 s. After
the app writes (a run request, settings) it clears the cache so the user sees the change.
"""

from __future__ import annotations

import io
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import psycopg
import pandas as pd
import polars as pl
import sqlalchemy as sa
import streamlit as st

from engine.config import ConfigError, Settings, StoreUnreachable, load_settings
from engine.pipeline.tiers import Tier, tiers_from
from engine.store import SchemaError, Store
from engine.store import views

ENTRY = Path(__file__).resolve().parent.parent / "streamlit_app.py"
_run = threading.local()


@contextmanager
def entry_point() -> Iterator[None]:
    """Marks this script thread's run as going through ``streamlit_app.py``."""
    _run.via_entry = True
    try:
        yield
    finally:
        _run.via_entry = False


def page() -> None:
    """First line of every page: make sure the entry point (sidebar, layout, navigation) ran.

    The folder is called ``pages/``, so Streamlit starts in its old multipage mode and, until a
    session has called ``st.navigation``, runs a page file on its own when its URL is opened
    first (AppTest recreates that mode on every run). Then the page runs the entry point in
    this same run, which renders the sidebar and this page through ``st.navigation``, and
    stops; staying in the same run keeps a clicked button's value.
    """
    if getattr(_run, "via_entry", False):
        return
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
    runpy.run_path(str(ENTRY), run_name="__main__")
    st.stop()


#: Cache lifetimes (s): live = run progress and request status, fresh = grids, slow = rarely changing.
LIVE_TTL = 2
FRESH_TTL = 10
SLOW_TTL = 30

PAGE_EVENT = "pages/event.py"
PAGE_ALERTS = "pages/alerts.py"

START_HINT = "the scheduler picks it up within a few seconds (start it with `oddsdesk scheduler` or `oddsdesk up`)"

CSS = {
    "better": "background-color: #c8e6c9; color: #1b5e20; font-weight: 600",
    "worse": "background-color: #ffcdd2; color: #b71c1c; font-weight: 600",
    "beats": "background-color: #e8f5e9; color: #1b5e20",
    "lower": "background-color: #e8f5e9; color: #1b5e20",
    "alert": "background-color: #ef9a9a; color: #7f0000; font-weight: 700",
    "best": "background-color: #c8e6c9; color: #1b5e20; font-weight: 600",
    "worst": "background-color: #ffcdd2; color: #b71c1c",
    views.STALE: "background-color: #ffe0b2; color: #8a4b00; font-weight: 600",
}
ALERT_ROW_CSS = "background-color: #fff0f0"
#: tiers: an odds cell whose price is older than its tier promises keeps its colour, in amber text.
STALE_CELL_CSS = "color: #b26a00; font-style: italic"


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        st.error(f"oddsdesk cannot start: {exc}")
        st.stop()


def db() -> str:
    """The store's key for the caches: the PostgreSQL URL if one is set, else the DuckDB file."""
    s = settings()
    return s.database_url or str(s.db_path)


@st.cache_resource(show_spinner=False)
def _store(target: str) -> Store:
    return Store.from_settings(settings())


def store() -> Store:
    return _store(db())


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _live(path: str, view: str, *args: Any) -> Any:
    return getattr(views, view)(_store(path), *args)


@st.cache_data(ttl=FRESH_TTL, show_spinner=False)
def _fresh(path: str, view: str, *args: Any) -> Any:
    return getattr(views, view)(_store(path), *args)


@st.cache_data(ttl=SLOW_TTL, show_spinner=False)
def _slow(path: str, view: str, *args: Any) -> Any:
    return getattr(views, view)(_store(path), *args)


def live(view: str, *args: Any) -> Any:
    """A view re-read at most every 2 s (run progress, requests, sidebar)."""
    return guarded(_live, view, *args)


def fresh(view: str, *args: Any) -> Any:
    """A view re-read at most every 10 s (grids)."""
    return guarded(_fresh, view, *args)


def slow(view: str, *args: Any) -> Any:
    """A view re-read at most every 30 s (unmapped markets)."""
    return guarded(_slow, view, *args)


@st.cache_data(ttl=LIVE_TTL, show_spinner=False)
def _store_live(path: str, method: str, *args: Any) -> Any:
    return getattr(_store(path), method)(*args)


def store_live(method: str, *args: Any) -> Any:
    """A ``Store`` read method (alerts: ``alerts``, ``unacknowledged_alerts``) re-read at most every 2 s."""
    return guarded(_store_live, method, *args)


def guarded(cached: Any, view: str, *args: Any) -> Any:
    try:
        return cached(db(), view, *args)
    except StoreUnreachable as exc:
        st.error(f"{str(exc)[0].upper()}{str(exc)[1:]}")
        st.stop()
    except (duckdb.Error, psycopg.Error, sa.exc.SQLAlchemyError, OSError, SchemaError) as exc:  # a message, not a traceback
        st.error(f"Cannot read the database at `{store().label}`: {type(exc).__name__}: {exc}")
        st.stop()


def sql(query: str) -> views.SqlResult:
    """A notebook query (cached briefly; its errors reach the page, which explains them)."""
    return _live(db(), "run_sql", query)


def invalidate() -> None:
    """After the app wrote something: the next read sees it."""
    _live.clear()
    _fresh.clear()
    _slow.clear()
    _store_live.clear()


# --- time ----------------------------------------------------------------------------------


def display_tz() -> str:
    """The viewer's time zone (browser), UTC when unknown."""
    tz = st.context.timezone or "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return tz


def local(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    tz = display_tz()
    cols = [c for c in columns if c in frame.columns and isinstance(frame.schema[c], pl.Datetime)]
    return frame.with_columns([pl.col(c).dt.convert_time_zone(tz) for c in cols]) if cols else frame


def local_time(value: datetime | None, fmt: str = "%a %d %b %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(ZoneInfo(display_tz())).strftime(fmt)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    now = now or views.utcnow()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return f"{duration((now - value).total_seconds())} ago"


def until(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "not scheduled"
    now = now or views.utcnow()
    seconds = (value - now).total_seconds()
    return "due now" if seconds <= 0 else f"in {duration(seconds)}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def local_today(now: datetime | None = None) -> date:
    return (now or views.utcnow()).astimezone(ZoneInfo(display_tz())).date()


def local_days(first: date, days: int) -> tuple[datetime, datetime]:
    """[start of local day ``first``, + ``days`` local days) as UTC instants."""
    tz = ZoneInfo(display_tz())
    start = datetime.combine(first, time(), tz)
    end = datetime.combine(first + timedelta(days=days), time(), tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


# --- grids ---------------------------------------------------------------------------------


def styled(frame: pl.DataFrame, row_alert: str | None = None) -> Any:
    """The visible columns as a pandas Styler coloured by the hidden status columns.

    Statuses are computed in polars (``views``); this only maps them to CSS.
    """
    visible = views.visible_columns(frame)
    data = frame.select(visible).to_pandas()
    css = pd.DataFrame("", index=data.index, columns=data.columns)
    if row_alert and row_alert in frame.columns:
        flags = frame[row_alert].fill_null(False).to_list()
        for i, flag in enumerate(flags):
            if flag:
                css.iloc[i, :] = ALERT_ROW_CSS
    for col in visible:
        status = views.status_column(col)
        if status in frame.columns:
            mapped = frame[status].replace_strict(CSS, default=None, return_dtype=pl.String).to_list()
            css[col] = [m if m else base for m, base in zip(mapped, css[col].to_list())]
        stale = views.stale_flag(col)
        if stale in frame.columns:  # tiers
            flags = frame[stale].fill_null(False).to_list()
            css[col] = [f"{c}; {STALE_CELL_CSS}".lstrip("; ") if f else c for c, f in zip(css[col].to_list(), flags)]
    return data.style.apply(lambda _: css, axis=None)


def odds_config(frame: pl.DataFrame) -> dict[str, Any]:
    """Column formats shared by the grids: odds 2 decimals, margins 1 decimal %, ages relative."""
    config: dict[str, Any] = {}
    for c in views.visible_columns(frame):
        if c.endswith("margin %"):
            config[c] = st.column_config.NumberColumn(c, format="%.1f%%", help="(Σ 1/odds − 1) × 100")
        elif c == "Δ margin":
            config[c] = st.column_config.NumberColumn(
                c, format="%+.1f", help="BetPawa margin − lowest competitor margin (points); red = BetPawa dearer")
        elif c.startswith("Δ "):
            config[c] = st.column_config.NumberColumn(
                c, format="%+.2f", help="BetPawa odds − best competitor odds; green = BetPawa pays more")
        elif c.endswith(" age min"):  # tiers
            config[c] = st.column_config.NumberColumn(
                c, format="%.1f min", help="minutes since this book last confirmed the price; amber = older "
                                           "than its refresh tier promises (tier interval × 1.5)")
        elif c.endswith(" seen"):
            config[c] = st.column_config.DatetimeColumn(c, format="distance", help="when this price was last confirmed")
        elif c.endswith("unavailable since"):
            config[c] = st.column_config.DatetimeColumn(c, format="calendar")
        elif c == "Kickoff":
            config[c] = st.column_config.DatetimeColumn(c, format="ddd D MMM, HH:mm")
        elif c.endswith(" fair"):
            config[c] = st.column_config.NumberColumn(c, format="%.2f", help="de-margined price")
        elif frame.schema[c] == pl.Float64:
            config[c] = st.column_config.NumberColumn(c, format="%.2f")
    return config


def tiers_in_force() -> tuple[Tier, ...]:
    """The refresh tiers the scheduler applies now (environment + saved settings)."""
    base = settings()
    try:
        return tiers_from(base.with_saved(fresh("saved_settings")))
    except ConfigError:
        return tiers_from(base)


def downloads(frame: pl.DataFrame, name: str, key: str) -> None:
    """CSV and Parquet of exactly the shown columns and rows."""
    data = views.shown(frame)
    left, right, _ = st.columns([1, 1, 4])
    left.download_button("Download CSV", data.write_csv().encode("utf-8"), file_name=f"{name}.csv",
                         mime="text/csv", key=f"{key}_csv", on_click="ignore")
    buf = io.BytesIO()
    data.write_parquet(buf)
    right.download_button("Download Parquet", buf.getvalue(), file_name=f"{name}.parquet",
                          mime="application/octet-stream", key=f"{key}_parquet", on_click="ignore")


# --- run requests -------------------------------------------------------------------------


def request_run(kind: str, payload: dict[str, Any] | None, state_key: str) -> int:
    """Ask the scheduler (another process) for a run; remember the request to show its state."""
    rid = store().add_run_request(kind, payload)
    st.session_state[state_key] = rid
    invalidate()
    return rid


def request_state(state_key: str) -> None:
    """Pending → picked up → done (with the run id), for the request remembered under ``state_key``."""
    rid = st.session_state.get(state_key)
    if rid is None:
        return
    reqs = live("run_requests", 50)
    row = reqs.filter(pl.col("id") == rid) if not reqs.is_empty() else reqs
    if row.is_empty():
        st.caption(f"Request #{rid} sent.")
        return
    r = row.row(0, named=True)
    status = r["status"]
    if status == "PENDING":
        sched = live("scheduler_status")
        alive = _scheduler_alive(sched)
        hint = ("pending, waiting for the scheduler…" if alive else
                "pending — no scheduler is running: start it with `oddsdesk scheduler` (or `oddsdesk up`)")
        st.info(f"Request #{rid}: {hint}", icon="⏳")
    elif status == "CLAIMED":
        st.info(f"Request #{rid}: picked up by the scheduler, running…", icon="🔄")
    elif status == "DONE":
        run = f"run #{r['run_id']}" if r.get("run_id") is not None else "done"
        st.success(f"Request #{rid}: done — {run}. {r.get('message') or ''}".strip(), icon="✅")
    else:
        st.error(f"Request #{rid}: {status} — {r.get('message') or 'no details'}")


def _scheduler_alive(status: dict[str, Any]) -> bool:
    updated = parse_time(status.get("updated_at"))
    return bool(updated and not status.get("stopped") and (views.utcnow() - updated).total_seconds() < 60)


# --- sidebar ----------------------------------------------------------------------------------


@st.fragment(run_every=5)
def sidebar_status() -> None:
    """Last run, next run, data freshness and "Scrape now", refreshed every 5 s."""
    now = views.utcnow()
    runs = live("runs", 1)
    st.markdown("**Scrape status**")
    if runs.is_empty():
        st.caption("No run yet — press **Scrape now**.")
    else:
        r = runs.row(0, named=True)
        icon = {"COMPLETED": "🟢", "PARTIAL": "🟡", "RUNNING": "🔄"}.get(r["status"], "🔴")
        when = (f"running for {duration(r.get('seconds'))}" if r["status"] == "RUNNING" else
                f"started {ago(r['started_at'], now)}, took {duration(r.get('seconds'))}")
        st.markdown(f"{icon} Last run #{r['id']} **{r['status']}**  \n{when}")
    sched = live("scheduler_status")
    nxt = parse_time(sched.get("next_run_at"))
    if _scheduler_alive(sched) and sched.get("mode") == "tiers":
        tier_status(sched)
    elif _scheduler_alive(sched):
        every = sched.get("interval_min")
        running = " · a run is in progress" if sched.get("running") else ""
        st.markdown(f"⏱️ Next run {until(nxt, now)}" + (f" (every {every:g} min)" if every else "") + running)
    else:
        st.markdown("⚠️ Scheduler not running" + (f" (last heard {ago(parse_time(sched.get('updated_at')), now)})"
                                                  if sched.get("updated_at") else ""))
    newest = live("freshness")
    st.markdown(f"📦 Newest price seen {ago(newest, now)}" if newest else "📦 No prices stored yet")
    unacknowledged = store_live("unacknowledged_alerts")  # alerts
    st.page_link(PAGE_ALERTS, label=f"{unacknowledged} unacknowledged alert{'s' if unacknowledged != 1 else ''}",
                 icon="🔔" if unacknowledged else "🔕")
    if st.button("Scrape now", key="scrape_now", type="primary", width="stretch"):
        request_run("scrape_now", None, "scrape_request")
    request_state("scrape_request")


def tier_status(sched: dict[str, Any]) -> None:
    """tiers: how often each tier is refreshed, its events, and how far behind a tier is."""
    plan = sched.get("tiers") or {}
    tiers = plan.get("tiers") or []
    running = " · a run is in progress" if sched.get("running") else ""
    parts = [f"{t['name']} every {t['interval_min']:g} min ({t['events']:,} events)" for t in tiers]
    st.markdown("⏱️ Refresh by kickoff: " + (" · ".join(parts) if parts else "starting") + running)
    for name, n in (plan.get("behind") or {}).items():
        st.warning(f"Behind by {n:,} events ({name} tier): more is due than the books' request budgets allow; "
                   "nearer tiers go first", icon="⏳")


def go_to_event(sr_id: str) -> None:
    st.session_state["event_sr_id"] = sr_id
    st.switch_page(PAGE_EVENT, query_params={"sr_id": sr_id})
