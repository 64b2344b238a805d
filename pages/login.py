"""Sign-in page: username and password, checked by the store owner (argon2 hashes never leave it)."""

import streamlit as st

from pages import _common as common

st.title("xscreen: sign in")
with st.form("login_form"):
    username = st.text_input("Username", key="login_user")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Sign in")
if submitted and common.sign_in(username, password):
    st.rerun()
st.caption("Accounts are created by an administrator with `xscreen users add`.")
