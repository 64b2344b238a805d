"""The dashboard as `xscreen serve` starts it: app.py on Streamlit's ASGI server (`st.App`) plus the two routes
that keep the session token in an HttpOnly cookie (pages/_cookie.py). Run it with `streamlit run dashboard.py`."""

from pathlib import Path

import streamlit as st

from pages import _cookie
from xscreen.settings import load_settings

app = st.App(Path(__file__).with_name("app.py"), routes=_cookie.routes(load_settings()))
