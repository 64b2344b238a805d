"""Sign out: drop the session and go back to the sign-in page."""

import streamlit as st

from pages import _common as common

common.sign_out()
st.rerun()
