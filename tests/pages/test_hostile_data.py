"""Text from the data is shown as text on every page (issue 28, item 3): a dataset whose column
names, category values, title, classes and file names are Markdown (an image that fetches an
address, a `javascript:` link) is rendered with that Markdown escaped, never as an image or a link.

Every string Streamlit renders as Markdown (labels, help texts, captions, alerts, headers,
metrics, expander and tab labels, radio options) is read from the page's element tree."""
from __future__ import annotations

from core.modeling import registry

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import catalog
from core.config import Settings
from core.data import batches, dataset_store, preparation
from ui import session_keys
from ui.text import md

IMG = "![px](http://127.0.0.1:5189/colname.png)"  # a numeric column
LINK = "[x](javascript:alert(1))"  # a binary column
CAT = "![c](http://127.0.0.1:5189/cat.png)"  # a category of the column "plan"
TITLE = "Shots ![t](http://127.0.0.1:5189/title.png)"  # the dataset's title
FILE = "![f](http://127.0.0.1:5189/file.png).csv"  # an uploaded batch's file name
HOSTILE = (IMG, LINK, CAT, TITLE, FILE)
NAME = "hostile"
# element types whose text is shown as plain text (st.code, st.text, st.json, tables, charts); the options
# of select boxes are plain text too (their field is not among MARKDOWN_FIELDS)
PLAIN = {"code", "text", "json", "arrow_data_frame", "plotly_chart"}
MARKDOWN_FIELDS = ("label", "help", "body", "delta", "text", "caption")
LINK_SYNTAX = re.compile(r"(?<!\\)\]\((?:http://127\.0\.0\.1:5189|javascript:)")


def hostile_frame(n: int = 300, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({IMG: rng.normal(40.0, 12.0, n).round(1).clip(0, None),
                         LINK: (rng.random(n) < 0.4).astype("int64"),
                         "plan": rng.choice(["basic", CAT, "pro"], n),
                         "churned": np.where(rng.random(n) < 0.4, "yes", "no")})


def hostile_settings(home: Path) -> Settings:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=catalog.find(NAME, [catalog.user_dir(home)]))


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose dataset has Markdown in its names, prepared, with a champion (a quick real training)."""
    from core.modeling import training

    home = tmp_path_factory.mktemp("hostile")
    dataset_store.add(home, hostile_frame(), NAME, "churned", title=TITLE)
    s = hostile_settings(home)
    preparation.prepare(s)
    training.train(s, models=[], n_iter=1, folds=2)
    return home


@pytest.fixture
def run(run_home):
    """run(page, home, state=None) on the hostile dataset (chosen in the session)."""
    return lambda page, home, state=None: run_home(page, home, {session_keys.DATASET: NAME, **(state or {})})


def markdown_texts(node) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    out: list[str] = []
    kind = getattr(node, "type", "")
    proto = getattr(node, "proto", None)
    if proto is not None and kind not in PLAIN and hasattr(proto, "ListFields"):
        for field, value in proto.ListFields():
            if field.name in MARKDOWN_FIELDS and isinstance(value, str):
                out.append(value)
            elif kind == "radio" and field.name in ("options", "captions"):
                out.extend(str(v) for v in value)
    for child in getattr(node, "children", {}).values():
        out.extend(markdown_texts(child))
    return out


def assert_shown_as_text(at: AppTest) -> list[str]:
    """No Markdown string of the page holds a hostile value as Markdown; returns the strings."""
    assert not at.exception, at.exception
    texts = markdown_texts(at._tree)
    for text in texts:
        for raw in HOSTILE:
            assert raw not in text, text
        assert not LINK_SYNTAX.search(text), text  # an unescaped `](` before the address
    return texts


def test_the_serve_page_shows_column_names_and_categories_as_text(run, hostile_home: Path) -> None:
    at = run("pages/4_Serve.py", hostile_home)
    texts = assert_shown_as_text(at)
    number = at.number_input(key=f"serve_{IMG}")
    assert number.label == md(IMG) == "\\!\\[px\\](http://127.0.0.1:5189/colname.png)"
    assert at.toggle(key=f"serve_{LINK}").label.startswith(md(LINK))
    plan = at.selectbox(key="serve_plan")
    assert CAT in plan.options  # select-box options are plain text: the raw value, shown as written
    assert any("Categories in the data: !\\[c\\](http://127.0.0.1:5189/cat.png)" in t for t in texts)  # a help text


def test_the_drift_page_shows_a_hostile_batch_and_columns_as_text(run, hostile_home: Path) -> None:
    from core.monitoring import check

    s = hostile_settings(hostile_home)
    path = hostile_home / "batch.parquet"
    hostile_frame(120, seed=9).to_parquet(path, index=False)
    batch = batches.read_batch(path, s, name=FILE)
    report = check.check(batch, s, store=False, log=False, model=registry.champion(s))
    at = run("pages/6_Drift.py", hostile_home,
             state={session_keys.DRIFT_REPORT: report, session_keys.DRIFT_CHECKED_ID: "x"})
    texts = assert_shown_as_text(at)
    assert any(md(FILE) in t for t in texts)  # the batch's name, in the header
    assert any(md(IMG) in t for t in texts)  # the features the upload box asks for
    assert IMG in at.selectbox[0].options  # "Distribution of": plain options


@pytest.mark.parametrize("page", ["app.py", "pages/1_Data.py", "pages/2_Train.py", "pages/3_Compare.py",
                                  "pages/5_Production.py"])
def test_the_other_pages_show_the_definitions_text_as_text(run, hostile_home: Path, page: str) -> None:
    texts = assert_shown_as_text(run(page, hostile_home))
    assert any(md(TITLE) in t for t in texts) or page in ("pages/2_Train.py", "pages/3_Compare.py")
