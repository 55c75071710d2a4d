"""Hostile column names in a real browser (issue 28 item 3): a column named like a Markdown image or
a `javascript:` link shows as text on the Serve and Drift pages; the browser fetches nothing from
the address in the name and no link with a `javascript:` target is drawn."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import App, Journey, free_port, running_app

pytestmark = pytest.mark.e2e


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        _Counter.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def trap() -> Iterator[int]:
    """A loopback server that counts every request: the address the hostile names point at."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()


def cli(home: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory: pytest.TempPathFactory, trap: int) -> Iterator[tuple[App, dict[str, str]]]:
    home = tmp_path_factory.mktemp("hostile-browser")
    image = f"![px](http://127.0.0.1:{trap}/colname.png)"
    link = "[x](javascript:alert(1))"
    rng = np.random.default_rng(0)
    n = 300
    a, b = rng.normal(size=n), rng.normal(size=n)
    table = pd.DataFrame({image: a.round(3), link: b.round(3), "plain": rng.integers(0, 20, n),
                          "y": np.where(a + b + rng.normal(scale=0.5, size=n) > 0, "yes", "no")})
    table.to_csv(home / "hostile.csv", index=False)
    table.head(80).to_csv(home / "batch.csv", index=False)
    cli(home, "dataset", "add", str(home / "hostile.csv"), "--name", "hostile", "--target", "y")
    cli(home, "dataset", "use", "hostile")
    cli(home, "prepare")
    cli(home, "train", "--models", "lr", "--n-iter", "1", "--folds", "2")
    with running_app(home, free_port()) as url:
        yield url, {"image": image, "link": link, "batch": str(home / "batch.csv")}


def _no_harm(j: Journey, trap_hits_before: int, where: str) -> None:
    assert _Counter.hits[trap_hits_before:] == [], f"{where}: the browser fetched {_Counter.hits}"
    assert j.page.locator("a[href^='javascript:']").count() == 0, f"{where}: a javascript: link was drawn"
    assert j.page.locator("img[src*='colname.png']").count() == 0, f"{where}: an image from a column name"


def test_serve_and_drift_show_hostile_column_names_as_text(browser, hostile_app) -> None:
    url, names = hostile_app
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        j = Journey(context.new_page(), url, "hostile")
        before = len(_Counter.hits)
        j.open()
        j.open("Serve")
        j.shot("serve")
        text = j.page.locator("[data-testid='stApp']").inner_text()
        assert names["image"] in text and names["link"] in text, "Serve: the names are not shown as text"
        _no_harm(j, before, "Serve")
        j.open("Drift")
        j.page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(names["batch"])
        j.settle()  # an uploaded batch is checked at once
        j.page.get_by_text("Report (JSON)").first.wait_for(timeout=120_000)
        text = j.page.locator("[data-testid='stApp']").inner_text()
        assert names["image"] in text or names["link"] in text, "Drift: the names are not shown as text"
        _no_harm(j, before, "Drift")
        j.shot("drift")
        j.assert_clean()
    finally:
        context.close()
