"""oddsdesk's analyst app: ``streamlit run streamlit_app.py``.

The entry point only declares the pages and the sidebar every page shares; the database path
comes from the one settings object (``ODDSDESK_DB_PATH``), so the app, the scheduler and the
CLI always look at the same file.

Pages run inside ``_shared.entry_point()`` so a page can tell when Streamlit ran it without
this script (see ``_shared.page``).
"""

from __future__ import annotations

import streamlit as st

from pages import _shared

st.set_page_config(page_title="oddsdesk", page_icon="⚖️", layout="wide")

navigation = st.navigation(
    {
        "Analysis": [
            st.Page("pages/comparison.py", title="Odds comparison", icon="📊", default=True),
            st.Page("pages/event.py", title="Event detail", icon="🔎"),
            st.Page("pages/value.py", title="Value & arbitrage", icon="🎯"),
            st.Page("pages/alerts.py", title="Movement alerts", icon="🔔"),
            st.Page("pages/coverage.py", title="Coverage", icon="🧭"),
            st.Page("pages/margins.py", title="Margin analytics", icon="📈"),
        ],
        "Status": [
            st.Page("pages/runs.py", title="Scrape runs", icon="🔄"),
            st.Page("pages/storage.py", title="Storage", icon="💾"),
        ],
        "Utilities": [
            st.Page("pages/sql.py", title="SQL notebook", icon="🧮"),
            st.Page("pages/settings.py", title="Settings", icon="⚙️"),
        ],
    }
)

with st.sidebar:
    _shared.sidebar_status()
    st.caption(f"Database: `{_shared.db()}`")

with _shared.entry_point():
    navigation.run()
