"""The dashboard as `xscreen serve` starts it: app.py on Streamlit's ASGI server (`st.App`) plus the two routes
that keep the session token in an HttpOnly cookie (pages/_cookie.py)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from pages import _cookie
from xscreen.settings import load_settings


def build(app_script: Path) -> st.App:
    """The ASGI app serving `app_script` with the cookie routes (settings read once, at this edge)."""
    return st.App(app_script, routes=_cookie.routes(load_settings()))
