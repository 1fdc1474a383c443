"""SQL notebook: read-only SQL over the store, as a grid, a chart and a download.

Statements run on the notebook's own connection (``engine/store/notebook.py``): DuckDB itself
refuses writes (read-only), files and URLs outside the store (no external access; the history
archive excepted) and setting changes (locked), whatever the text looks like. One statement at
a time, stopped after ``SQL_TIMEOUT_S`` seconds, at most ``SQL_ROW_CAP`` rows shown.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from engine.store import views
from pages import _shared

_shared.page()

OWN = "— write your own —"

postgres = _shared.store().postgres
st.title("SQL notebook")
st.caption(f"Read-only SQL ({'PostgreSQL' if postgres else 'DuckDB'} dialect) over the store. Tables: events, "
           "bookmaker_events, odds_current, odds_history, scrape_runs, run_progress, event_scrape_status, "
           "unmapped_markets, settings, run_requests. "
           f"Results show at most {views.SQL_ROW_CAP:,} rows; a query is stopped after {views.SQL_TIMEOUT_S:g} s."
           + ("" if postgres else " Archived history (past retention), when there is some: odds_history_archive."))

example = st.selectbox("Example queries", [OWN, *views.EXAMPLE_QUERIES], key="sql_example")
if example != OWN and st.session_state.get("sql_loaded") != example:
    st.session_state["sql_text"] = views.EXAMPLE_QUERIES[example]
    st.session_state["sql_loaded"] = example

with st.form("sql_form"):
    sql = st.text_area("SQL", key="sql_text", height=180, placeholder="SELECT * FROM events LIMIT 10")
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    st.session_state["sql_run"] = sql
query = st.session_state.get("sql_run", "")
if not query.strip():
    st.info("Write a query or pick an example, then press **Run**.")
    st.stop()

try:
    result = _shared.sql(query)
except views.ReadOnlyRefusal as exc:
    st.error(f"refused: {exc}")
    st.stop()
except views.SqlTimeout as exc:
    st.error(str(exc))
    st.stop()
except Exception as exc:
    if views.is_read_only_error(exc):
        st.error(f"read-only: the notebook cannot change the database — {exc}")
    elif views.is_file_access_error(exc):
        st.error(f"refused: the notebook cannot touch files outside the store or change its settings — {exc}")
    else:
        st.error(f"SQL error: {exc}")
    st.stop()

rows = result.frame
note = f" (first {views.SQL_ROW_CAP:,} shown — add a LIMIT or aggregate)" if result.truncated else ""
st.caption(f"{rows.height:,} rows × {rows.width} columns{note}")
st.dataframe(rows, hide_index=True, key="sql_result")
if rows.height:
    _shared.downloads(rows, "oddsdesk-query", key="sql")

if rows.height and rows.width >= 2:
    with st.expander("Chart"):
        shape = "|".join(rows.columns)
        c = st.columns(3)
        x = c[0].selectbox("x", rows.columns, key=f"chart_x_{shape}")
        others = [col for col in rows.columns if col != x]
        numeric = [col for col in others if rows.schema[col].is_numeric()]
        y = c[1].selectbox("y", numeric or others, key=f"chart_y_{shape}")
        kind = c[2].selectbox("type", ["line", "bar", "point"], key="chart_kind")
        # Plain field names: altair would read "count(*)" or "a.b" in a column name as syntax.
        chart = alt.Chart(rows.select(pl.col(x).alias("x"), pl.col(y).alias("y")).to_pandas())
        mark = {"line": chart.mark_line(point=True), "bar": chart.mark_bar(), "point": chart.mark_point()}[kind]
        st.altair_chart(mark.encode(x=alt.X("x", title=x), y=alt.Y("y", title=y), tooltip=["x", "y"]),
                        width="stretch", key="sql_chart")
