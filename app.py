"""xscreen dashboard: sign-in, then the pages the user's role may open (each page re-checks the role itself)."""

import streamlit as st

from analytics.session import allowed_pages
from pages import _common as common

st.set_page_config(page_title="xscreen", layout="wide")
PAGES = {
    "triage": st.Page("pages/triage.py", title="Live triage", url_path="triage"),
    "drift": st.Page("pages/drift.py", title="Drift & accuracy", url_path="drift"),
    "relabel": st.Page("pages/relabel.py", title="Relabelling", url_path="relabel"),
    "models": st.Page("pages/models.py", title="Models", url_path="models"),
    "sql": st.Page("pages/sql.py", title="Analyst SQL", url_path="sql"),
    "whatif": st.Page("pages/whatif.py", title="Threshold what-if", url_path="whatif"),
}
session = common.current_session()
if session is None:
    st.navigation([st.Page("pages/login.py", title="Sign in", url_path="login")]).run()
else:
    st.sidebar.markdown(f"Signed in as **{session.username}** ({session.role})")
    pages = [PAGES[p] for p in allowed_pages(session.role)]
    # The sign-in page stays registered (hidden) so the rerun right after signing in lands on it and moves on.
    login = st.Page("pages/login.py", title="Sign in", url_path="login", visibility="hidden")
    st.navigation([*pages, st.Page("pages/logout.py", title="Sign out", url_path="logout"), login]).run()
