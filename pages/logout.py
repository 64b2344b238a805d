"""Sign out: end the session in the store and in the browser, then go to the sign-in page (the rerun rebuilds the
navigation without a session)."""

import streamlit as st

from pages import _common as common

s = st.session_state.get(common.SESSION_KEY)
if s is not None:
    common.sign_out(s)
    st.rerun()
st.switch_page("pages/login.py")
