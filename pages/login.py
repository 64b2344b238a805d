"""Sign-in page: username and password, checked by the store owner (argon2 hashes never leave it)."""

import streamlit as st

from analytics.session import allowed_pages
from pages import _common as common

signed_in = common.current_session()
if signed_in is not None:  # just signed in (or came back to /login): go to the first page the role may open
    st.switch_page(f"pages/{allowed_pages(signed_in.role)[0]}.py")
common.sign_in_form()
