"""The Data page and the task kind (issue 34, item 1): the "Add a dataset" panel says the inferred
task in words and lets the analyst choose another kind the target fits (inferring again); the
overview of a prepared multiclass or regression dataset shows the label per split for its kind,
not a positive rate (AppTest)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import catalog
from core.data import dataset_store, preparation
from tests.pages.test_datasets import picker, user_settings
from ui import session_keys


def species_frame(n: int = 150, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    species = rng.choice(["Gentoo", "Adelie", "Chinstrap"], n, p=[0.35, 0.45, 0.2])
    centre = pd.Series(species).map({"Adelie": 38.0, "Chinstrap": 48.0, "Gentoo": 47.0}).to_numpy()
    return pd.DataFrame({"bill": (centre + rng.normal(0, 3, n)).round(1), "island": rng.choice(["a", "b"], n),
                         "species": species})


def stars_frame(n: int = 150, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stars = rng.integers(1, 6, n)
    return pd.DataFrame({"length": (stars * 40 + rng.normal(0, 30, n)).round(), "stars": stars})


def price_frame(n: int = 150, seed: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.2, 3.0, n).round(2)
    return pd.DataFrame({"size": size, "colour": rng.choice(["D", "E"], n),
                         "price": (1000 * size + rng.normal(0, 300, n)).round(2)})


def _plain_split(df: pd.DataFrame, test_size: float, seed: int, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(df, test_size=test_size, random_state=seed)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def upload(at: AppTest, frame: pd.DataFrame, name: str, target: str) -> AppTest:
    at.file_uploader[0].set_value(("table.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    at.text_input[0].input(name)
    next(s for s in at.selectbox if s.label.startswith("Target")).set_value(target).run()
    next(b for b in at.button if b.label == "Infer definition").click().run()
    assert not at.exception
    return at


def task_box(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Task")


def test_a_multiclass_target_is_said_in_words_and_saved(run_home, tmp_path: Path) -> None:
    at = upload(run_home("pages/1_Data.py", tmp_path), species_frame(), "penguins", "species")
    said = at.info[0].value
    assert said.startswith("Predicts species: multiclass, 3 classes: Adelie (") and "Chinstrap (" in said
    assert "Positive class" not in said and "--task" not in said
    box = task_box(at)
    assert box.value == "multiclass" and box.options == ["multiclass (inferred)"] and box.disabled
    next(b for b in at.button if b.label == "Save dataset").click().run()
    assert not at.exception and not at.error
    spec = catalog.find("penguins", [catalog.user_dir(tmp_path)])
    assert spec.task == "multiclass" and spec.target.names == ("Adelie", "Chinstrap", "Gentoo")
    assert picker(at).value == "penguins"


def test_the_analyst_chooses_another_task_the_target_fits(run_home, tmp_path: Path) -> None:
    at = upload(run_home("pages/1_Data.py", tmp_path), stars_frame(), "reviews", "stars")
    assert at.info[0].value.startswith("Predicts stars: multiclass, 5 classes: 1 (")
    assert at.info[0].value.endswith("few distinct values; regression fits too: choose it under Task).")
    box = task_box(at)
    assert box.options == ["multiclass (inferred)", "regression"] and not box.disabled
    box.set_value("regression").run()
    assert not at.exception and not at.error
    assert at.info[0].value.startswith("Predicts stars: regression, a number from 1 to 5 (mean ")
    assert at.info[0].value.endswith("; as chosen under Task).")
    assert task_box(at).value == "regression"
    next(b for b in at.button if b.label == "Save dataset").click().run()
    assert not at.exception and not at.error
    assert catalog.find("reviews", [catalog.user_dir(tmp_path)]).task == "regression"


def test_a_refused_target_names_the_fix_and_the_task_box_offers_it(run_home, tmp_path: Path) -> None:
    frame = stars_frame()
    frame.loc[frame.index[:146], "stars"] = frame["stars"].iloc[:146].replace(5, 4)
    frame.loc[frame.index[146:], "stars"] = 5  # four rows of 5 stars: too rare a class
    at = upload(run_home("pages/1_Data.py", tmp_path), frame, "reviews", "stars")
    assert "class too rare to split" in at.error[0].value
    assert at.error[0].value.endswith("or predict the number itself by choosing regression under Task.")
    assert not at.data_editor and not catalog.user_dir(tmp_path).joinpath("reviews").exists()
    box = task_box(at)
    assert box.options == ["multiclass (inferred)", "regression"]
    box.set_value("regression").run()
    next(b for b in at.button if b.label == "Infer definition").click().run()
    assert not at.error and at.info[0].value.startswith("Predicts stars: regression, a number from 1 to 5")
    positive = next(t for t in at.text_input if t.label.startswith("Positive class"))
    assert positive.disabled  # a binary target's only


@pytest.mark.parametrize("frame, target, title, absent", [
    (species_frame, "species", "Class balance: share of each species per split", "share of positive"),
    (price_frame, "price", "Target price per split", "Class balance"),
])
def test_the_overview_shows_the_label_per_split_for_its_task(run_home, tmp_path: Path, frame, target: str,
                                                             title: str, absent: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_store.add(tmp_path, frame(), "mine", target)
    catalog.set_active(tmp_path, "mine")
    try:
        preparation.prepare(user_settings(tmp_path, "mine"))
    except ValueError:  # a preparation that stratifies every target by its values cannot split a number
        monkeypatch.setattr(preparation, "split", _plain_split)
        preparation.prepare(user_settings(tmp_path, "mine"))
    at = run_home("pages/1_Data.py", tmp_path)
    assert not at.exception
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert any(t.startswith(title) for t in titles) and not any(absent in t for t in titles)
