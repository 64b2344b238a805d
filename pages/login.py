"""Sign-in page: username and password, checked by the store owner (argon2 hashes never leave it)."""

import streamlit as st

from analytics.session import allowed_pages
from pages import _common as common

signed_in = common.current_session()
if signed_in is not None:  # just signed in (or came back to /login): go to the first page the role may open
    st.switch_page(f"pages/{allowed_pages(signed_in.role)[0]}.py")
st.title("xscreen: sign in")
with st.form("login_form"):
    username = st.text_input("Username", key="login_user")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Sign in", key="login_submit")
if submitted and common.sign_in(username, password):
    st.rerun()
st.caption("Accounts are created by an administrator with `xscreen users add`.")
