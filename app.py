"""xscreen dashboard: sign-in, then the pages the user's role may open (each page re-checks the role itself)."""

import streamlit as st

from analytics.session import allowed_pages
from pages import _common as common
from pages import _cookie

st.set_page_config(page_title="xscreen", layout="wide")


def page(name: str, shown: bool) -> st.Page:
    return st.Page(f"pages/{name}.py", title=common.PAGE_TITLES[name], url_path=name,
                   visibility="visible" if shown else "hidden")


# Every page stays registered, hidden when the user may not open it (or nobody is signed in): a bookmarked page URL
# then opens that page, whose guard shows the sign-in form (or the refusal), and the rerun after signing in lands on
# the page asked for instead of the first one.
session = common.current_session()
_cookie.render_pending()  # hand the browser its session cookie after a sign-in, or drop it after a sign-out
allowed = allowed_pages(session.role) if session is not None else []
if session is None:
    login = st.Page("pages/login.py", title="Sign in", url_path="login")
    st.navigation([login, *(page(name, False) for name in common.PAGE_TITLES)]).run()
else:
    st.sidebar.markdown(f"Signed in as **{session.username}** ({session.role})")
    pages = [page(name, True) for name in allowed] + [page(n, False) for n in common.PAGE_TITLES if n not in allowed]
    # The sign-in page stays registered (hidden) so the rerun right after signing in on it moves on.
    login = st.Page("pages/login.py", title="Sign in", url_path="login", visibility="hidden")
    st.navigation([*pages, st.Page("pages/logout.py", title="Sign out", url_path="logout"), login]).run()
