"""The shopstream dashboard: `streamlit run` this file (`shopstream dashboard` does).

Pages are grouped in the navigation: live pages read MongoDB, History reads the warehouse.
Every page is behind `access.gate` (sign-in, when a provider is configured).
"""

from __future__ import annotations

import streamlit as st

from shopstream.dashboard import access
from shopstream.dashboard.views import customer, health, history, overview, spikes

st.set_page_config(page_title="shopstream", page_icon="🛒", layout="wide")
access.gate()  # nothing below runs for a session that may not see the pages

PAGES = {
    "Live": [
        st.Page(overview.render, title="Overview", icon=":material/monitoring:", default=True),
        st.Page(
            customer.render, title="Customer", icon=":material/person_search:", url_path="customer"
        ),
        st.Page(
            spikes.render, title="Demand spikes", icon=":material/trending_up:", url_path="spikes"
        ),
    ],
    "History": [
        st.Page(history.render, title="History", icon=":material/history:", url_path="history"),
    ],
    "Operations": [
        st.Page(
            health.render,
            title="Pipeline health",
            icon=":material/monitor_heart:",
            url_path="health",
        ),
    ],
}

st.navigation(PAGES).run()
