"""The dataset picker, the Data page on the analyst's own dataset, adding one, and the Serve form's
widgets per feature kind (AppTest)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import catalog
from core.config import Settings
from core.data import dataset_store, preparation
from ui import session_keys

NAME = "churn"  # the user dataset of these tests (not Kobe)


def churn_frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    """A small churn table: an identifier, a categorical plan, a binary flag, a number, a yes/no target."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2])
    premium = (rng.random(n) < 0.4).astype("int64")
    usage = rng.normal(40.0, 12.0, n).round(1).clip(0, None)
    logit = -0.05 * (usage - 40.0) - 0.8 * premium + np.where(plan == "basic", 0.7, -0.3)
    churned = np.where(rng.random(n) < 1.0 / (1.0 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"customer_id": np.arange(1000, 1000 + n), "plan": plan, "premium": premium,
                         "usage": usage, "churned": churned})


def user_settings(home: Path, name: str = NAME) -> Settings:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    return Settings.from_env(env, dataset=catalog.find(name, [catalog.user_dir(home)]))


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    """A home holding one user dataset ("churn", no production batch), not prepared."""
    dataset_store.add(tmp_path, churn_frame(), NAME, "churned")
    return tmp_path


@pytest.fixture
def run(run_home):
    """run(page, home, state=None) -> AppTest after one run with WORKBENCH_HOME=home."""
    return run_home


def picker(at: AppTest):
    return at.sidebar.selectbox(key=session_keys.DATASET_CHOICE)


# --------------------------------------------------------------------------- the picker
def test_the_picker_lists_builtin_and_user_datasets(run, user_home: Path) -> None:
    at = run("app.py", user_home)
    assert not at.exception
    box = picker(at)
    assert box.label == "Dataset"
    assert "Kobe Bryant shots (kobe)" in box.options and "Churn (churn)" in box.options
    assert box.value == "kobe"  # no active dataset: the default
    assert at.title[0].value == "Kobe Workbench"  # the product name stays


def test_the_default_is_the_homes_active_dataset(run, user_home: Path) -> None:
    catalog.set_active(user_home, NAME)
    at = run("app.py", user_home)
    assert not at.exception
    assert picker(at).value == NAME
    assert "Churn" in at.caption[0].value


def test_switching_changes_the_data_page_and_drops_the_old_state(run, user_home: Path) -> None:
    preparation.prepare(user_settings(user_home))
    kobe_summary = {"rows": 20285, "train_rows": 16228, "test_rows": 4057, "prod_rows": 5412, "seconds": 1.0,
                    "mlflow_run_id": "kobe-run"}
    at = run("pages/1_Data.py", user_home, state={session_keys.PREP_SUMMARY: kobe_summary})
    assert not at.exception
    assert at.title[0].value == "Data: Kobe Bryant shots"
    assert "No prepared data yet" in at.info[0].value  # Kobe is not prepared in this home
    picker(at).set_value(NAME).run()
    assert not at.exception
    assert at.title[0].value == "Data: Churn"
    assert session_keys.PREP_SUMMARY not in at.session_state  # Kobe's summary is not shown beside churn
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Labelled dev rows"] == "300"
    assert metrics["Prod rows (labelled)"] == "none"
    assert "no production batch" in at.main.caption[0].value
    # back to Kobe: its own (empty) state, nothing of churn's
    picker(at).set_value("kobe").run()
    assert not at.exception
    assert at.title[0].value == "Data: Kobe Bryant shots" and not at.metric


def test_two_sessions_keep_their_own_dataset(run, user_home: Path) -> None:
    first = run("app.py", user_home)
    picker(first).set_value(NAME).run()
    second = run("app.py", user_home)
    assert picker(first).value == NAME and picker(second).value == "kobe"


def shown(box) -> str:
    """The option a browser shows in a select box it mounts now: the value the run sent, else the
    box's default (a box on another page is a new widget to the browser)."""
    return box.proto.raw_value if box.proto.set_value else box.proto.options[box.proto.default]


def test_every_page_shows_and_uses_the_sessions_dataset(run, tmp_path: Path) -> None:
    """Issue 30: after a page switch the box showed its first option (Kobe) while the page worked on
    the session's dataset, and picking the shown one changed nothing. A name after 'kobe', so
    that the first option is not the session's dataset."""
    dataset_store.add(tmp_path, churn_frame(), "loans", "churned")
    catalog.set_active(tmp_path, "loans")
    at = run("app.py", tmp_path)
    pages = ["pages/1_Data.py", "pages/2_Train.py", "pages/3_Compare.py", "pages/4_Serve.py",
             "pages/5_Production.py", "pages/6_Drift.py"]
    for page in pages + pages[:2]:  # twice through the first ones: the bug showed on every other page
        at.switch_page(page).run()
        assert not at.exception, page
        box = picker(at)
        assert (box.value, shown(box)) == ("loans", "Loans (loans)"), page
        assert at.sidebar.caption[0].value.startswith("**loans**"), page
        assert at.title[0].value.endswith(": Loans"), page
    picker(at).set_value("kobe").run()  # on the Train page
    assert at.title[0].value == "Train: Kobe Bryant shots"
    for page in pages:
        at.switch_page(page).run()
        assert not at.exception, page
        assert (picker(at).value, shown(picker(at))) == ("kobe", "Kobe Bryant shots (kobe)"), page
        assert at.title[0].value.endswith(": Kobe Bryant shots"), page
        assert at.sidebar.caption[0].value.startswith("**kobe**"), page


def test_production_page_without_a_production_batch_offers_an_upload(run, trained_user_home: Path) -> None:
    at = run("pages/5_Production.py", trained_user_home, state={session_keys.DATASET: NAME})
    assert not at.exception
    assert "Churn sets no production rows apart" in at.info[0].value and "upload a batch" in at.info[0].value
    assert "nothing to score" not in " ".join(i.value for i in at.info)
    assert len(at.file_uploader) == 1 and not at.radio  # the upload is the only batch to score


# --------------------------------------------------------------------------- adding a dataset
def upload_churn(at: AppTest, frame: pd.DataFrame | None = None) -> AppTest:
    data = (churn_frame() if frame is None else frame).to_csv(index=False).encode()
    at.file_uploader[0].set_value(("customers.csv", data, "text/csv")).run()
    return at


def test_add_a_dataset_infers_edits_and_saves_it(run, tmp_path: Path) -> None:
    at = upload_churn(run("pages/1_Data.py", tmp_path))
    assert not at.exception
    assert "customers.csv: 300 rows, 5 columns" in " ".join(c.value for c in at.caption)
    infer_button = next(b for b in at.button if b.label == "Infer definition")
    assert infer_button.disabled  # no name, no target yet
    at.text_input[0].input("my-churn")
    target = next(s for s in at.selectbox if s.label.startswith("Target"))
    target.set_value("churned").run()
    next(b for b in at.button if b.label == "Infer definition").click().run()
    assert not at.exception
    assert "Positive class: 'yes'" in at.info[0].value and "--positive" not in at.info[0].value
    editor = at.data_editor[0].value
    assert editor["column"].tolist() == ["plan", "premium", "usage"]
    assert editor.set_index("column")["kind"].to_dict() == {"plan": "categorical", "premium": "binary",
                                                          "usage": "numeric"}
    left_out = at.dataframe[-1].value
    assert left_out["column"].tolist() == ["customer_id"] and "identifier" in left_out["reason"].iloc[0]
    # the analyst leaves `usage` out and saves
    at.session_state[session_keys.ADD_EDITOR] = {"edited_rows": {2: {"include": False}}, "added_rows": [],
                                                 "deleted_rows": []}
    next(b for b in at.button if b.label == "Save dataset").click().run()
    assert not at.exception
    assert not at.error, at.error[0].value
    assert "Saved my-churn: 300 rows, 2 features" in at.success[0].value
    assert picker(at).value == "my-churn" and at.title[0].value == "Data: My churn"
    spec = catalog.find("my-churn", [catalog.user_dir(tmp_path)])
    assert spec.features == ("plan", "premium") and spec.target.positive == "yes"
    assert spec.feature("plan").values == ("basic", "plus", "pro")


def test_a_bad_production_query_is_refused_and_nothing_is_saved(run, tmp_path: Path) -> None:
    at = upload_churn(run("pages/1_Data.py", tmp_path))
    at.text_input[0].input("churn2")
    next(s for s in at.selectbox if s.label.startswith("Target")).set_value("churned")
    next(t for t in at.text_input if t.label.startswith("Production rows")).input("no_such_column > 3").run()
    next(b for b in at.button if b.label == "Infer definition").click().run()
    assert not at.exception
    assert "cannot be applied" in at.error[0].value
    assert not at.data_editor and not catalog.user_dir(tmp_path).joinpath("churn2").exists()


def test_an_edit_that_breaks_the_definition_is_refused(run, tmp_path: Path) -> None:
    at = upload_churn(run("pages/1_Data.py", tmp_path))
    at.text_input[0].input("churn3")
    next(s for s in at.selectbox if s.label.startswith("Target")).set_value("churned").run()
    next(b for b in at.button if b.label == "Infer definition").click().run()
    at.session_state[session_keys.ADD_EDITOR] = {"edited_rows": {0: {"kind": "binary"}}, "added_rows": [],
                                                 "deleted_rows": []}  # plan holds three text values
    next(b for b in at.button if b.label == "Save dataset").click().run()
    assert not at.exception
    assert "plan" in at.error[0].value and "not numbers" in at.error[0].value
    assert not catalog.user_dir(tmp_path).joinpath("churn3").exists()
    assert picker(at).value == "kobe"


# --------------------------------------------------------------------------- the Serve form's widgets
def _form_script(spec_name: str, home: str) -> None:
    import streamlit as st

    from core import catalog as cat
    from ui import forms

    spec = cat.find(spec_name, [cat.user_dir(home)])
    typical = {"plan": "plus", "premium": 0.0, "usage": 40.0}
    values = {f.name: forms.feature_input(f, typical[f.name], {"usage": (0.0, 90.0)}) for f in spec.features_spec}
    st.json(values)


def test_the_form_draws_a_select_box_for_a_category_and_a_toggle_for_a_binary_feature(user_home: Path) -> None:
    at = AppTest.from_function(_form_script, args=(NAME, str(user_home))).run()
    assert not at.exception
    plan = at.selectbox(key="serve_plan")
    assert plan.options == ["basic", "plus", "pro"] and plan.value == "plus"
    premium = at.toggle(key="serve_premium")
    assert premium.value is False and premium.label.startswith("Premium")
    usage = at.number_input(key="serve_usage")
    assert usage.value == 40.0 and usage.min == 0.0
    premium.set_value(True).run()
    assert not at.exception
    assert json.loads(at.json[0].value) == {"plan": "plus", "premium": 1.0, "usage": 40.0}  # numbers, not bools
    # a category typed in the box (AppTest cannot type into it: the value is preset instead)
    typed = AppTest.from_function(_form_script, args=(NAME, str(user_home)))
    typed.session_state["serve_plan"] = "enterprise"
    typed.run()
    assert not typed.exception
    assert json.loads(typed.json[0].value)["plan"] == "enterprise"
    assert any("'enterprise' (unseen in training)" in c.value for c in typed.caption)


@pytest.fixture(scope="module")
def trained_user_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose user dataset "churn" is prepared and has a champion (a quick real training)."""
    from core.modeling import training

    home = tmp_path_factory.mktemp("churn-trained")
    dataset_store.add(home, churn_frame(), NAME, "churned")
    s = user_settings(home)
    preparation.prepare(s)
    training.train(s, models=[], n_iter=1, folds=2)
    return home


def test_the_serve_page_on_a_dataset_with_categories(run, trained_user_home: Path) -> None:
    at = run("pages/4_Serve.py", trained_user_home, state={session_keys.DATASET: NAME})
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Server"] == "down"
    plan = at.selectbox(key="serve_plan")
    assert plan.options == ["basic", "plus", "pro"] and plan.label == "Plan"
    assert at.toggle(key="serve_premium").label == "Premium = 1"
    assert at.checkbox(key=session_keys.SERVE_ALLOW_UNSEEN).label == "Allow unseen categories"
    assert "P(yes)" in next(s for s in at.slider if s.key.startswith(session_keys.SERVE_THRESHOLD)).label
    assert '"plan"' in at.code[0].value  # the curl example sends the category as text
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert "The model server is down" in at.error[0].value


@pytest.mark.slow
def test_the_serve_pages_command_names_its_dataset_and_runs_as_shown(run, trained_user_home: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 30: the copied command checked a churn row with Kobe's definition ("Invalid shot: ...")
    when the home's active dataset was another one; it now says `--dataset` and runs as shown."""
    import shlex
    import subprocess
    import sys

    from core.serving import server
    from tests.e2e.conftest import free_port

    port = free_port()
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(port))
    s = user_settings(trained_user_home).replace(serve_port=port)
    server.start(s)
    try:
        at = run("pages/4_Serve.py", trained_user_home, state={session_keys.DATASET: NAME})
        assert not at.exception
        command = next(c.value for c in at.code if c.value.startswith("python -m core predict"))
        assert command.startswith(f"python -m core predict --dataset {NAME} --input '")
        assert "--threshold" not in command and "--allow-unseen" not in command  # the version's own, as sent
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
        env.update(WORKBENCH_HOME=str(trained_user_home), WORKBENCH_SERVE_PORT=str(port))
        # the home's active dataset is Kobe: only `--dataset` makes the command check a churn row
        assert catalog.active_name(trained_user_home) in (None, "kobe")
        done = subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=Path(__file__).resolve().parents[2],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert 0.0 <= answer["proba_yes"] <= 1.0 and answer["label"] in (0, 1)
        # without it, the home's active dataset (Kobe) would check the churn row, and refuse it
        wrong = subprocess.run([sys.executable, *shlex.split(command.replace(f" --dataset {NAME}", ""))[1:]],
                               cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                               timeout=120)
        assert wrong.returncode != 0 and "Invalid shot" in wrong.stderr
        # a threshold moved on the page, and unseen categories allowed, are in the command too
        next(s for s in at.slider if s.key.startswith(session_keys.SERVE_THRESHOLD)).set_value(0.3)
        at.checkbox(key=session_keys.SERVE_ALLOW_UNSEEN).check()
        at.get("form_submit_button")[0].click().run()  # the form's values count once submitted
        assert not at.exception and not at.error
        command = next(c.value for c in at.code if c.value.startswith("python -m core predict"))
        assert command.endswith(" --threshold 0.3 --allow-unseen --json")
    finally:
        server.stop(s)
