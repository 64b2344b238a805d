"""The real thing in a real browser: owner (seeded) + `streamlit run app.py`, Debian chromium via Playwright.

Signs in, triages the top item with its keyboard shortcut, checks it left the queue, and saves a screenshot of
every page (into docs/screenshots/ when $XSCREEN_SCREENSHOTS says so). Servers bind 127.0.0.1 on free ports and are always stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from analytics.client import StoreClient
from analytics.store import Store
from tests.app_seed import render_images, seed_demo
from tests.conftest import OwnerThread, make_settings

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
# Screenshots go to a temporary folder, so `make test` leaves the checkout clean; to refresh the committed
# pictures that README shows: XSCREEN_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/test_browser.py
SHOTS_ENV = "XSCREEN_SCREENSHOTS"
PASSWORD = "correct-Horse-7"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
PAGES = [("Drift & accuracy", "drift"), ("Relabelling", "relabel"), ("Models", "models"),
         ("Threshold what-if", "whatif"), ("Analyst SQL", "sql")]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium "
                                 "(apt-get install -y chromium; `make test` does it)")]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, StoreClient]]:
    """Seeded owner + streamlit server; yields (app url, store client). Both stopped afterwards."""
    settings = make_settings(tmp_path / "home")
    now = datetime.now(UTC)  # the app runs on the real clock, so the store does too
    with Store.from_settings(settings) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        client.add_user("ada", PASSWORD, "admin")
        seed_demo(client, 1500, seed=5, now=now, images=render_images(tmp_path / "images", 6, seed=5))
        env = {**os.environ, "XSCREEN_HOME": str(settings.home),
               "XSCREEN_NETWORK__STORE_PORT": str(settings.network.store_port)}
        port = settings.network.app_port
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
             str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, proc)
            yield url, client
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("streamlit did not become healthy in 60 s")


def _settle(page, ms: int = 1500) -> None:  # type: ignore[no-untyped-def]
    """Wait for the script run to finish, then for plotly/images to paint."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_timeout(ms)


def test_officer_signs_in_triages_and_every_page_renders(stack: tuple[str, StoreClient], tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    url, client = stack
    SHOTS = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path / "screenshots"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1800})  # Streamlit scrolls inside: tall viewport
            page.goto(url)
            page.get_by_label("Username").wait_for(timeout=60_000)
            _settle(page, 500)
            page.screenshot(path=str(SHOTS / "login.png"))
            page.get_by_label("Username").fill("ada")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("heading", name="Live triage").wait_for(timeout=60_000)
            _settle(page)
            top = client.queue("ada", limit=1)["scan_id"].iloc[0]
            page.get_by_role("button", name="Open next").click()
            page.get_by_role("heading", name=f"Scan {top}").wait_for(timeout=60_000)
            _settle(page, 2500)
            page.screenshot(path=str(SHOTS / "triage.png"), full_page=True)
            page.keyboard.press("1")  # shortcut of "Clear (false alarm)"
            page.get_by_text("Open the next item").wait_for(timeout=60_000)
            assert top not in client.queue("ada", limit=1000)["scan_id"].tolist()
            decision = client.get_scan(top)["decisions"][-1]
            assert (decision["officer"], decision["decision"]) == ("ada", "cleared")
            for title, name in PAGES:
                page.get_by_role("link", name=title).click()
                page.get_by_role("heading", name=title).wait_for(timeout=60_000)
                if name == "sql":
                    page.get_by_role("button", name="Run").click()
                    page.get_by_text("rows").first.wait_for(timeout=60_000)
                _settle(page, 2500)
                page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        finally:
            browser.close()
    for name in ["login", "triage", *(n for _, n in PAGES)]:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
