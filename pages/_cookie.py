"""The session cookie: the browser keeps the store's session token in an HttpOnly cookie, so a refresh or a
bookmarked page URL keeps the user signed in (Streamlit's own session state dies with the page).

Streamlit cannot set a cookie from a script, and a cookie set by page JavaScript could not be HttpOnly. So the
dashboard (`dashboard.py`, Streamlit's ASGI `st.App`) adds two routes: after a sign-in the page posts a one-time
code (`analytics.session.CookieHandoff`, 60 s) to `_xscreen/session`, which answers with an HttpOnly, SameSite=Strict
cookie holding the token; `_xscreen/signout` deletes it. The script reads the cookie back from the WebSocket
handshake (`st.context.cookies`) and asks the store whether the token is still a live session. Under a plain
`streamlit run app.py` the routes do not exist and sessions simply end with the page. Trade-offs: docs/APP.md.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import streamlit as st
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from analytics.identity import read_home_id
from analytics.session import CookieHandoff
from xscreen.settings import Settings

SET_PATH, CLEAR_PATH = "_xscreen/session", "_xscreen/signout"
PENDING = "xs_cookie_code"  # session_state: a code waiting for the browser to collect its cookie
CLEAR = "xs_cookie_clear"  # session_state: the browser should drop its cookie (signed out, or a dead token)
REFUSED = "xs_cookie_refused"  # session_state: a cookie token the store refused; not asked again this page load
HANDOFF = CookieHandoff()  # one per dashboard process: the script threads issue, the routes redeem

# The page posts JSON (a cross-site page cannot send that without a CORS preflight, which nothing here answers).
_POST = """<script>
fetch("{path}", {{method: "POST", credentials: "same-origin", headers: {{"Content-Type": "application/json"}},
                 body: {body}}});
</script>"""


def cookie_name(settings: Settings) -> str:
    """Cookies are scoped by host name, not port: the name carries the home, so two homes' dashboards on one host
    (a test home beside the live one) never read or drop each other's cookie."""
    home_id = read_home_id(settings.home)
    suffix = home_id.replace("-", "")[:12] if home_id else str(settings.network.app_port)
    return f"xscreen_session_{suffix}"


def token_from_browser(settings: Settings) -> str | None:
    """The session token the browser sent when this page was loaded, unless the store already refused it."""
    token = st.context.cookies.get(cookie_name(settings))
    return token if token and token != st.session_state.get(REFUSED) else None


def keep_in_browser(token: str) -> None:
    """After a sign-in: have the browser collect the cookie (render_pending posts the code on the next runs)."""
    st.session_state.pop(CLEAR, None)
    st.session_state[PENDING] = HANDOFF.issue(token)


def forget_in_browser(refused: str | None = None) -> None:
    """After a sign-out, or for a token the store refused: have the browser drop its cookie."""
    st.session_state.pop(PENDING, None)
    st.session_state[CLEAR] = True
    if refused is not None:
        st.session_state[REFUSED] = refused


def render_pending() -> None:
    """Post the pending code (every run until the route has redeemed it; a run cut short by a page switch may not
    reach the browser) or the sign-out. Rendered in the sidebar: the script element takes no room."""
    code = st.session_state.get(PENDING)
    if code is not None and HANDOFF.pending(code):
        st.sidebar.html(_POST.format(path=SET_PATH, body=json.dumps(json.dumps({"code": code}))),
                        unsafe_allow_javascript=True)
    elif code is not None:
        st.session_state.pop(PENDING)
    if st.session_state.pop(CLEAR, False):
        st.sidebar.html(_POST.format(path=CLEAR_PATH, body=json.dumps("{}")), unsafe_allow_javascript=True)


def _same_origin_json(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        return False
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


def routes(settings: Settings) -> list[Route]:
    """The two cookie routes of the dashboard (added to Streamlit's server by dashboard.py). The cookie's name is
    looked up per request: the home id appears once the store owner has first started."""

    async def collect(request: Request) -> Response:
        if not _same_origin_json(request):
            return Response(status_code=403)
        try:
            code = (await request.json()).get("code")
        except (ValueError, AttributeError):
            return Response(status_code=400)
        token = HANDOFF.redeem(code) if isinstance(code, str) else None
        if token is None:
            return Response(status_code=403)
        resp = Response(status_code=204)
        # No max-age: a browser-session cookie; the store decides how long the session lives (sliding expiry).
        resp.set_cookie(cookie_name(settings), token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
        return resp

    async def drop(request: Request) -> Response:
        if not _same_origin_json(request):
            return Response(status_code=403)
        resp = Response(status_code=204)
        resp.delete_cookie(cookie_name(settings), path="/", httponly=True, samesite="strict")
        return resp

    return [Route(f"/{SET_PATH}", collect, methods=["POST"]), Route(f"/{CLEAR_PATH}", drop, methods=["POST"])]
