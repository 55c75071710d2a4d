"""Browser tests: the app on a free port, driven by Playwright in Debian's headless Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import ROOT, make_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class App(str):
    """The app's URL, with the home folder it runs on."""

    home: Path


@contextmanager
def running_app(home: Path, serve_port: int) -> Iterator[App]:
    """The workbench started like `make app` does, on a free port, on `home`; stopped (with any
    model server a page started) on the way out."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(WORKBENCH_HOME=str(home), WORKBENCH_SERVE_PORT=str(serve_port),
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    log = open(home / "streamlit.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = App(f"http://127.0.0.1:{port}")
    url.home = home
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            pytest.fail("the app did not start within 60 s")
        yield url
    finally:
        from core.serving import server

        server.stop(make_settings(home).replace(serve_port=serve_port))  # a page's server outlives the app
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The workbench started like `make app` does, on a free port, with an empty home."""
    with running_app(tmp_path_factory.mktemp("e2e-home"), free_port()) as url:
        yield url


class Journey:
    """A browser page that records console errors and saves a screenshot per step."""

    def __init__(self, page, url: str, name: str) -> None:
        self.page, self.url, self.name = page, url, name
        self.home = getattr(url, "home", None)
        self.console_errors: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))
        page.on("response", lambda r: self.console_errors.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400 else None)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def open(self, page_name: str = "") -> None:
        """Open the home page (by URL), or another page through the sidebar as a user does.

        (A deep link makes Streamlit's front end probe `/<Page>/_stcore/health` first, which
        404s by design; clicking the navigation does not.)
        """
        if not page_name:
            self.page.goto(self.url)
        else:
            self.page.locator("[data-testid='stSidebarNav'] a", has_text=page_name).first.click()
        self.page.wait_for_selector("[data-testid='stApp'] h1", timeout=90_000)
        self.settle()

    def settle(self, timeout_ms: int = 120_000) -> None:
        """Wait until the script run finished (no 'running' indicator)."""
        self.page.wait_for_timeout(500)
        self.page.wait_for_function(
            "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
        self.page.wait_for_timeout(300)

    def shot(self, step: str) -> Path:
        """Save the whole page (Streamlit scrolls inside its main block, so grow the viewport)."""
        path = ARTIFACTS / f"{self.name}-{step}.png"
        size = self.page.viewport_size
        for _ in range(3):  # growing the viewport can lay out more (charts): measure again
            height = self.page.evaluate(
                "Math.max(...[...document.querySelectorAll('[data-testid=\"stMain\"], "
                "[data-testid=\"stMainBlockContainer\"]')].map(e => e.scrollHeight), 0)")
            self.page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
            self.page.wait_for_timeout(600)
        self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size(size)
        return path

    def assert_clean(self) -> None:
        exceptions = self.page.locator("[data-testid='stException']")
        assert exceptions.count() == 0, exceptions.first.inner_text()
        assert not self.console_errors, self.console_errors
