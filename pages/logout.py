"""Sign out: drop the session, then go to the sign-in page (the rerun rebuilds the navigation without a session)."""

import streamlit as st

from pages import _common as common

if st.session_state.get(common.SESSION_KEY) is not None:
    common.sign_out()
    st.rerun()
st.switch_page("pages/login.py")
