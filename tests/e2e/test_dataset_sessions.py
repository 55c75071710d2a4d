"""Two analysts on two datasets at once (issue 30): every page's sidebar box, sidebar caption and
title name the session's dataset, a switch takes effect at once on every page, and one session's
choice never reaches the other."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import App, Journey, free_port, running_app

pytestmark = pytest.mark.e2e

PAGES = ["Data", "Train", "Compare", "Serve", "Production", "Drift"]
KOBE = ("kobe", "Kobe Bryant shots")
LOANS = ("loans", "Loans")  # after 'kobe' in the box: its first option is not this dataset


def cli(home: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def two_dataset_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app on a home holding Kobe and a small 'loans' table, 'loans' the home's active dataset."""
    home = tmp_path_factory.mktemp("two-datasets")
    n = 120
    table = pd.DataFrame({"amount": [1000 + 37 * (i % 50) for i in range(n)],
                          "purpose": ["home", "car", "study"] * (n // 3),
                          "approved": ["yes", "no", "no", "yes"] * (n // 4)})
    table.to_csv(home / "loans.csv", index=False)
    cli(home, "dataset", "add", str(home / "loans.csv"), "--name", LOANS[0], "--target", "approved")
    cli(home, "dataset", "use", LOANS[0])
    with running_app(home, free_port()) as url:
        yield url


def box(j: Journey):
    return j.page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox'] input")


def assert_names(j: Journey, dataset: tuple[str, str], where: str) -> None:
    """The box, the sidebar's caption and the page's title all name `dataset`."""
    name, title = dataset
    assert box(j).input_value() == f"{title} ({name})", where
    caption = j.page.locator("[data-testid='stSidebar'] [data-testid='stCaptionContainer']").first.inner_text()
    assert caption.startswith(f"{name}:"), (where, caption)
    h1 = j.page.locator("[data-testid='stApp'] h1").first.inner_text()
    assert h1 == "Kobe Workbench" or h1.endswith(f": {title}"), (where, h1)
    if h1 == "Kobe Workbench":  # the home page names the dataset in its caption
        assert f"Dataset: {title}" in j.page.locator("[data-testid='stMain']").inner_text(), where


def pick(j: Journey, dataset: tuple[str, str]) -> None:
    box(j).click()
    j.page.get_by_role("option", name=f"{dataset[1]} ({dataset[0]})", exact=True).click()
    j.settle()


def test_two_sessions_on_two_datasets(browser, two_dataset_app: App) -> None:
    ctx_a = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx_b = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        a = Journey(ctx_a.new_page(), two_dataset_app, "datasets-a")
        b = Journey(ctx_b.new_page(), two_dataset_app, "datasets-b")
        a.open()
        b.open()
        assert_names(a, LOANS, "a home")  # a new tab starts on the home's active dataset
        pick(b, KOBE)
        assert_names(b, KOBE, "b home")
        for page in PAGES:  # the two sessions step through the pages side by side
            a.open(page)
            assert_names(a, LOANS, f"a {page}")
            b.open(page)
            assert_names(b, KOBE, f"b {page}")
        a.shot("01-loans-drift")
        b.shot("01-kobe-drift")
        # both switch at once, on a page each; every page follows at once, in each session
        pick(a, KOBE)
        pick(b, LOANS)
        assert_names(a, KOBE, "a after switch")
        assert_names(b, LOANS, "b after switch")
        for page in reversed(PAGES):
            a.open(page)
            assert_names(a, KOBE, f"a {page} after switch")
            b.open(page)
            assert_names(b, LOANS, f"b {page} after switch")
        a.open("Home")
        assert_names(a, KOBE, "a home after switch")
        a.assert_clean()
        b.assert_clean()
    finally:
        ctx_a.close()
        ctx_b.close()
