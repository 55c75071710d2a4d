"""The task kind of a dataset (issue 34, item 1; `core/data/target_task.py`, `core/data/infer.py`,
`dataset add --task`): each kind inferred from the target and said in a sentence, every override,
every refusal (exit 2 through the command line, nothing written), leaks per task, the task in
`dataset add --json` and `dataset list --json`, a replace that changes the task, an edited
definition that keeps it; and a property: any small target column is refused or labelled whole."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import catalog, cli
from core.data import dataset_store, definition_edit
from core.data.infer import infer
from core.data.target_task import MAX_CLASSES, MIN_CLASS_ROWS, MIN_REGRESSION_ROWS, check_dev, read_target
from core.dataset import DatasetError
from tests.unit.test_dataset_add_cli import home  # noqa: F401 (fixture: an empty home)

ROOT = Path(__file__).resolve().parents[2]
N = 120


def _species(n: int = N, seed: int = 4) -> pd.DataFrame:
    """Three text classes (Gentoo listed first, Adelie the most common) told apart by a number, and
    a weight that does not tell them apart."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Gentoo", "Adelie", "Chinstrap"], n, p=[0.35, 0.45, 0.2])
    centre = pd.Series(species).map({"Adelie": 38.0, "Chinstrap": 48.0, "Gentoo": 47.0}).to_numpy()
    return pd.DataFrame({"bill": (centre + rng.normal(0, 3, n)).round(1), "weight": rng.normal(4000, 500, n).round(),
                         "species": species})


def _price(n: int = N, seed: int = 5) -> pd.DataFrame:
    """A price (numbers, not whole) that grows with a size, and a colour."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.2, 3.0, n).round(2)
    return pd.DataFrame({"size": size, "colour": rng.choice(["D", "E", "F"], n),
                         "price": (1000 * size + rng.normal(0, 300, n)).round(2)})


def _target(inference) -> dict:
    return inference.definition["target"]


def _excluded(inference) -> dict[str, str]:
    return {e["column"]: e["reason"] for e in inference.excluded}


# --------------------------------------------------------------------------- inferred kinds
def test_two_values_are_binary_as_before_and_said() -> None:
    frame = pd.DataFrame({"x": np.arange(10) % 3, "y": ["no"] * 7 + ["yes"] * 3})
    inference = infer(frame, "words", "y")
    assert inference.task == "binary" and inference.fitting_tasks == ("binary",)
    assert inference.task_note == "predicts y: binary, two classes: no and yes (inferred from its two values)"
    assert inference.positive_note.startswith("positive class: 'yes' (the minority, 30.0%")
    assert inference.positive_share == 0.3
    target = _target(inference)
    assert (target["positive"], target["negative"], target["task"]) == ("yes", "no", "binary")
    assert "classes" not in target and "unit" not in target  # the binary [target] as it always was


def test_text_classes_are_multiclass_in_sorted_order_with_their_shares() -> None:
    frame = _species()
    inference = infer(frame, "penguins", "species")
    target = _target(inference)
    assert inference.task == "multiclass" and inference.fitting_tasks == ("multiclass",)
    assert target["classes"] == ["Adelie", "Chinstrap", "Gentoo"] == target["class_labels"]  # sorted, not by rows
    assert set(target) == {"column", "task", "classes", "class_labels"}  # no positive class
    shares = frame["species"].value_counts(normalize=True)
    assert inference.task_note == (
        f"predicts species: multiclass, 3 classes: Adelie ({shares['Adelie']:.1%}), Chinstrap "
        f"({shares['Chinstrap']:.1%}), Gentoo ({shares['Gentoo']:.1%}) of labelled rows (inferred from its 3 text "
        "values)")
    assert inference.positive_note is None and inference.positive_share is None
    assert inference.definition["description"].endswith("predicts species (3 classes).")
    spec = catalog.from_dict(tomllib.loads(tomli_w.dumps(inference.definition)))
    assert spec.task == "multiclass" and spec.target.names == ("Adelie", "Chinstrap", "Gentoo")
    labels, bad = spec.target.encode(frame["species"])
    assert bad == 0 and set(labels) == {0.0, 1.0, 2.0}
    json.dumps(inference.to_dict())
    assert inference.to_dict()["task"] == "multiclass" and inference.to_dict()["positive_note"] is None


def test_few_whole_numbers_are_classes_ascending_and_could_be_a_number() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=N), "stars": rng.choice([5, 1, 3, 2, 4], N)})
    inference = infer(frame, "stars", "stars")
    target = _target(inference)
    assert inference.task == "multiclass" and inference.fitting_tasks == ("multiclass", "regression")
    assert target["classes"] == [1, 2, 3, 4, 5] and target["class_labels"] == ["1", "2", "3", "4", "5"]
    assert all(isinstance(v, int) for v in target["classes"])
    assert inference.task_note.endswith("(inferred from its 5 whole numbers, few distinct values; --task regression "
                                        "fits too)")


@pytest.mark.parametrize("values, reason", [
    (lambda rng: (rng.normal(50, 10, N)).round(2), "distinct numbers"),                  # not whole
    (lambda rng: rng.integers(0, 40, N), "distinct whole numbers"),                     # many whole numbers
    (lambda rng: rng.choice([0.5, 1.5, 2.5], N), "3 distinct numbers"),                  # few, but not whole
])
def test_numbers_with_many_values_or_not_whole_are_regression(values, reason: str) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=N), "y": values(rng)})
    inference = infer(frame, "reg", "y")
    assert inference.task == "regression" and inference.fitting_tasks[0] == "regression"
    assert _target(inference) == {"column": "y", "task": "regression"}
    y = frame["y"]
    assert inference.task_note.startswith(f"predicts y: regression, a number from {y.min():g} to {y.max():g} "
                                          f"(mean {y.mean():.4g}, standard deviation")
    assert reason in inference.task_note
    assert inference.definition["description"].endswith("predicts y (a number).")
    spec = catalog.from_dict(tomllib.loads(tomli_w.dumps(inference.definition)))
    labels, bad = spec.target.encode(y)
    assert spec.task == "regression" and bad == 0 and np.allclose(labels, y)


def test_missing_and_blank_targets_are_unlabelled_in_every_task() -> None:
    frame = _species()
    frame.loc[[0, 5], "species"] = [None, "  "]
    inference = infer(frame, "gaps", "species")
    assert (inference.task, inference.labelled_rows, inference.unlabelled_rows) == ("multiclass", N - 2, 2)
    price = _price()
    price.loc[[1, 2, 3], "price"] = np.nan
    inference = infer(price, "gaps", "price")
    assert (inference.task, inference.labelled_rows, inference.unlabelled_rows) == ("regression", N - 3, 3)


# --------------------------------------------------------------------------- overrides
def test_every_override_the_target_fits_is_taken_and_said() -> None:
    rng = np.random.default_rng(2)
    stars = pd.DataFrame({"x": rng.normal(size=N), "y": rng.choice([1, 2, 3, 4], N)})
    as_number = infer(stars, "o", "y", task="regression")
    assert as_number.task == "regression" and as_number.task_note.endswith("; as chosen with --task)")
    assert infer(stars, "o", "y", task="multiclass").task == "multiclass"
    halves = pd.DataFrame({"x": rng.normal(size=N), "y": rng.choice([0.5, 1.5, 2.5], N)})
    as_classes = infer(halves, "o", "y", task="multiclass")
    assert as_classes.task == "multiclass" and _target(as_classes)["classes"] == [0.5, 1.5, 2.5]
    assert _target(as_classes)["class_labels"] == ["0.5", "1.5", "2.5"]
    two = pd.DataFrame({"x": np.arange(10) % 3, "y": [0, 1] * 5})
    chosen = infer(two, "o", "y", task="binary")
    assert chosen.task == "binary" and chosen.task_note.endswith("(as chosen with --task)")
    assert chosen.definition == infer(two, "o", "y").definition  # the same definition as inferred


@pytest.mark.parametrize("frame, task, message", [
    (_species(), "binary", r"--task binary does not fit the target: a binary target holds exactly two classes; "
                           r"'species' holds 3: 'Adelie' \(\d+ rows\), .* It fits multiclass: leave --task out"),
    (_species(), "regression", r"--task regression does not fit the target: a regression target holds numbers; "
                               r"'species' holds text values \(e.g. 'Adelie'\)\. It fits multiclass"),
    (pd.DataFrame({"x": range(10), "y": [0, 1] * 5}), "multiclass",
     r"a multiclass target holds 3 to 50 classes; 'y' holds 2: .* It fits binary: leave --task out"),
    (pd.DataFrame({"x": range(10), "y": [0, 1] * 5}), "regression",
     r"a regression target holds numbers with more than two values; 'y' holds 2: .* It fits binary"),
    (_price(), "multiclass", rf"a multiclass target holds 3 to 50 classes; 'price' holds {N}: .* It fits regression"),
    (_price(), "nosuch", r"--task 'nosuch' is not a task kind; choose one of binary, multiclass, regression"),
])
def test_an_override_the_target_does_not_fit_is_refused_naming_what_fits(frame: pd.DataFrame, task: str,
                                                                          message: str) -> None:
    target = {"species": "species", "price": "price"}.get(frame.columns[-1], "y")
    with pytest.raises(DatasetError, match=message):
        infer(frame, "wrong", target, task=task)


# --------------------------------------------------------------------------- refusals
def test_a_target_that_fits_no_kind_is_refused_with_what_to_do() -> None:
    with pytest.raises(DatasetError, match=r"holds one value among the rows that have a label \('a' \(10 rows\)\): "
                                           r"there is nothing to predict\. Choose another column"):
        infer(pd.DataFrame({"x": range(12), "y": ["a"] * 10 + [None, " "]}), "one", "y")
    with pytest.raises(DatasetError, match=r"has no labelled rows: every value is missing or blank"):
        infer(pd.DataFrame({"x": range(3), "y": [None, np.nan, ""]}), "none", "y")
    many = pd.DataFrame({"x": range(6 * (MAX_CLASSES + 1)), "y": [f"c{i:02d}" for i in range(MAX_CLASSES + 1)] * 6})
    with pytest.raises(DatasetError, match=r"holds 51 classes \(text values\) .* a multiclass target has at most 50\. "
                                           r"Group the rare ones into fewer classes"):
        infer(many, "many", "y")


def test_a_class_too_rare_to_split_is_refused_with_the_minimum_and_the_fix() -> None:
    frame = _species()
    frame.loc[: N - MIN_CLASS_ROWS, "species"] = frame["species"].replace("Chinstrap", "Adelie")
    frame.loc[frame.index[-MIN_CLASS_ROWS:], "species"] = ["Chinstrap"] * (MIN_CLASS_ROWS - 1) + ["Adelie"]
    with pytest.raises(DatasetError, match=rf"The target 'species' has 1 class too rare to split among the labelled "
                                           rf"rows: 'Chinstrap' \(4 rows\); each class needs at least {MIN_CLASS_ROWS} "
                                           r"labelled rows .* Merge it into another class, or drop those rows\."):
        infer(frame, "rare", "species")
    numbers = pd.DataFrame({"x": range(40), "y": [1] * 18 + [2] * 18 + [3] * 4})
    with pytest.raises(DatasetError, match=r"'y' has 1 class too rare .*: 3 \(4 rows\).* or predict the number itself "
                                           r"with --task regression"):
        infer(numbers, "rare", "y")
    assert infer(numbers, "rare", "y", task="regression").task == "regression"  # which then fits
    assert infer(numbers, "rare", "y", task="regression").fitting_tasks == ("regression",)  # no failing choice offered


def test_the_dev_rows_are_checked_per_task() -> None:
    frame = _species().assign(year=np.where(np.arange(N) < 100, 2023, 2024))
    frame.loc[frame.index[:100], "species"] = frame["species"].iloc[:100].replace("Chinstrap", "Gentoo")
    frame.loc[frame.index[:2], "species"] = "Chinstrap"  # two Chinstrap among the dev rows, the rest in prod
    with pytest.raises(DatasetError, match=r"too rare to split among the labelled rows left for training by "
                                           r"--prod-where 'year >= 2024': 'Chinstrap' \(2 rows\).*set fewer rows "
                                           "apart as production"):
        infer(frame, "split", "species", prod_where="year >= 2024")
    price = _price().assign(year=np.where(np.arange(N) < 8, 2023, 2024))
    with pytest.raises(DatasetError, match=rf"The regression target 'price' has only 8 labelled rows left for training "
                                           rf"by --prod-where 'year >= 2024'; a regression needs at least "
                                           rf"{MIN_REGRESSION_ROWS} labelled rows"):
        infer(price, "split", "price", prod_where="year >= 2024")
    with pytest.raises(DatasetError, match=r"do not hold both classes"):  # binary: as it always was
        infer(pd.DataFrame({"x": range(20), "y": [0, 1] * 10}), "b", "y", prod_where="y == 1")


def test_positive_is_refused_on_a_target_that_is_not_binary() -> None:
    with pytest.raises(DatasetError, match=r"--positive applies to a binary target; 'species' is a multiclass target "
                                           r"\(its classes have no positive one\)\. Leave --positive out\."):
        infer(_species(), "p", "species", positive="Adelie")
    with pytest.raises(DatasetError, match=r"'price' is a regression target \(a number\)"):
        infer(_price(), "p", "price", positive="1")


def test_infinite_numbers_in_a_regression_target_are_refused() -> None:
    frame = _price()
    frame.loc[3, "price"] = np.inf
    with pytest.raises(DatasetError, match=r"holds 1 values that are not finite numbers .* leave their target empty"):
        infer(frame, "inf", "price")


# --------------------------------------------------------------------------- leaks
def test_leaks_are_found_for_multiclass_and_regression_targets() -> None:
    frame = _species(600)  # enough rows for the binned numbers of `tag` to show it separates the classes
    rng = np.random.default_rng(7)
    frame = frame.assign(code=frame["species"].str[:2].str.upper(),                         # the class as a code
                         tag=frame["species"].map({"Adelie": 1, "Chinstrap": 2, "Gentoo": 3}) + rng.random(600) / 10)
    reasons = _excluded(infer(frame, "leaky", "species"))
    assert reasons["code"].startswith("a leak: alone it predicts the target with one-vs-rest ROC-AUC (mean over "
                                      "classes) 1.000")
    assert reasons["tag"].startswith("a leak") and "bill" not in reasons and "weight" not in reasons
    price = _price()
    price = price.assign(price_eur=price["price"] * 0.9 + 3,                                # a copy in another unit
                         log_price=np.log(price["price"] - price["price"].min() + 1),       # a monotone function
                         noisy=price["price"] + rng.normal(0, 300, N))                      # strong, not a copy
    inference = infer(price, "leaky", "price")
    reasons = _excluded(inference)
    assert reasons["price_eur"].startswith("a leak: alone it predicts the target with R² (on its ranks) 0.99")
    assert reasons["log_price"].startswith("a leak")
    assert set(inference.kinds) == {"size", "colour", "noisy"}


# --------------------------------------------------------------------------- saving and editing
def test_an_edited_definition_keeps_its_task(home: Path) -> None:  # noqa: F811
    frame = _species()
    inference = infer(frame, "edited", "species")
    rows = definition_edit.edit_table(inference.definition)
    rows[1]["include"] = False  # leave `weight` out
    edited = definition_edit.apply_edits(inference.definition, rows, frame)
    assert edited["target"] == inference.definition["target"]
    result = dataset_store.add(home, frame, "edited", "species", definition=edited)
    spec = catalog.load(Path(result.definition_path))
    assert (result.task, spec.task, spec.features) == ("multiclass", "multiclass", ("bill",))
    assert spec.target.classes == ("Adelie", "Chinstrap", "Gentoo")


def test_replacing_a_dataset_by_another_task_is_allowed_and_said(home: Path,  # noqa: F811
                                                                 capsys: pytest.CaptureFixture) -> None:
    frame = _price().assign(dear=lambda d: np.where(d["price"] > 1500, "yes", "no"))
    first = dataset_store.add(home, frame, "shop", "dear")
    assert (first.task, first.previous_task) == ("binary", None)
    again = dataset_store.add(home, frame.drop(columns="dear"), "shop", "price", replace=True)
    assert (again.task, again.previous_task, again.replaced) == ("regression", "binary", True)
    assert any(w.startswith("shop was a binary dataset and is now regression: the models registered for it were "
                            "trained for binary") for w in again.warnings)
    assert catalog.find("shop", [catalog.user_dir(home)]).task == "regression"
    path = home.parent / "shop.csv"
    frame.to_csv(path, index=False)
    assert cli.main(["dataset", "add", str(path), "--name", "shop", "--target", "price", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "Replaced dataset 'shop': " in out and "it was a" not in out  # same task: nothing to say
    assert cli.main(["dataset", "add", str(path), "--name", "shop", "--target", "colour", "--replace"]) == 0
    out = capsys.readouterr().out
    assert "Replaced dataset 'shop' (it was a regression dataset, now multiclass): " in out
    assert "Predicts colour: multiclass, 3 classes: D (" in out and "shop was a regression dataset" in out


# --------------------------------------------------------------------------- the command line
def snapshot(home: Path) -> dict[str, str]:
    """Every file and folder under the home: path -> SHA-256 (a folder: "dir"); lock files aside."""
    if not home.exists():
        return {}
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(home.rglob("*")) if not p.name.endswith(".lock")}


@pytest.mark.parametrize("table, argv, message", [
    ("one", ["--target", "y"], r"holds one value .* nothing to predict\. Choose another column"),
    ("many", ["--target", "y"], r"holds 51 classes .* at most 50\. Group the rare ones"),
    ("rare", ["--target", "species"], r"1 class too rare to split .* at least 5 labelled rows .* Merge it into another "
                                      r"class, or drop those rows"),
    ("species", ["--target", "species", "--task", "regression"],
     r"--task regression does not fit the target: a regression target holds numbers; .* It fits multiclass"),
    ("species", ["--target", "species", "--task", "binary"], r"a binary target holds exactly two classes"),
    ("species", ["--target", "species", "--positive", "Adelie"], r"--positive applies to a binary target"),
    ("species", ["--target", "species", "--task", "ordinal"], r"argument --task: invalid choice: 'ordinal'"),
])
def test_every_task_refusal_exits_2_naming_the_problem_and_writes_nothing(home: Path, tmp_path: Path,  # noqa: F811
                                                                          table: str, argv: list[str], message: str,
                                                                          capsys: pytest.CaptureFixture) -> None:
    species = _species()
    rare = species.assign(species=["Chinstrap" if i < 3 else s.replace("Chinstrap", "Gentoo")
                                   for i, s in enumerate(species["species"])])
    tables = {"one": pd.DataFrame({"x": range(20), "y": "same"}), "species": species, "rare": rare,
              "many": pd.DataFrame({"x": range(204), "y": [f"c{i:02d}" for i in range(51)] * 4})}
    path = tmp_path / f"{table}.csv"
    tables[table].to_csv(path, index=False)
    dataset_store.add(home, _species(), "already", "species")  # a home with something in it
    before = snapshot(home)
    assert cli.main(["dataset", "add", str(path), "--name", "refused", *argv, "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert re.search(message, error["message"]), error["message"]
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert snapshot(home) == before


def test_add_and_list_report_the_task_on_the_command_line(home: Path, tmp_path: Path) -> None:  # noqa: F811
    _species().to_csv(tmp_path / "penguins.csv", index=False)
    _price().to_csv(tmp_path / "price.csv", index=False)
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DATASET", "MLFLOW_TRACKING_URI")}
    env["WORKBENCH_HOME"] = str(home)

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)

    added = run("dataset", "add", str(tmp_path / "penguins.csv"), "--name", "penguins", "--target", "species",
                "--json")
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout)
    assert result["task"] == "multiclass" and result["previous_task"] is None
    assert result["inference"]["task"] == "multiclass" and result["inference"]["fitting_tasks"] == ["multiclass"]
    assert result["inference"]["task_note"].startswith("predicts species: multiclass, 3 classes: Adelie (")
    assert result["inference"]["positive_note"] is None and result["inference"]["positive_share"] is None
    text = run("dataset", "add", str(tmp_path / "price.csv"), "--name", "price", "--target", "price")
    assert text.returncode == 0, text.stderr
    assert "Predicts price: regression, a number from " in text.stdout and "Positive class" not in text.stdout
    listed = run("dataset", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert (rows["penguins"]["task"], rows["penguins"]["classes"]) == ("multiclass", ["Adelie", "Chinstrap", "Gentoo"])
    assert (rows["price"]["task"], rows["price"]["classes"]) == ("regression", [])
    assert rows["kobe"]["task"] == "binary" and rows["kobe"]["classes"] == ["missed", "made"]
    refused = run("dataset", "add", str(tmp_path / "penguins.csv"), "--name", "other", "--target", "species",
                  "--task", "regression")
    assert refused.returncode == 2 and refused.stdout == "" and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: --task regression does not fit the target")


# --------------------------------------------------------------------------- property
_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64), st.integers(-10**12, 10**12),
    st.sampled_from([0, 1, 2, 3, 0.5, 1.5, "a", "b", "c", "A", " a ", "1", "", "yes", "no", True, False]),
    st.text(max_size=3), st.none())
_columns = st.one_of(
    st.lists(_values, min_size=1, max_size=60),                                          # any mix, as objects
    st.lists(st.one_of(st.integers(0, 6), st.none()), min_size=1, max_size=60),           # few whole numbers
    st.lists(st.one_of(st.floats(-1e3, 1e3), st.just(float("nan"))), min_size=1, max_size=60),  # numbers
    st.lists(st.sampled_from(["x", "y", "z", "w", None, " "]), min_size=1, max_size=60),  # text classes
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=_columns, task=st.sampled_from([None, None, "binary", "multiclass", "regression"]))
def test_any_target_column_is_refused_or_labelled_whole(values: list, task: str | None) -> None:
    y = pd.Series(values)
    if all(v is None or isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        y = pd.to_numeric(y)  # a column of numbers as a file would give it
    frame = pd.DataFrame({"x": np.arange(len(y)) % 7, "y": y})
    try:
        found = read_target(frame, "y", task=task)
    except DatasetError as err:
        assert str(err) and err.exit_code == 2
        return
    assert task is None or found.target.task == task
    try:
        check_dev(found.target, found.labels, None)
    except DatasetError as err:  # too few rows; a class too rare to split is not offered either
        assert str(err) and (found.target.task != "multiclass" or "multiclass" not in found.fitting)
    else:
        assert found.target.task in found.fitting
    assert found.inferred == found.target.task or task is not None
    labels, bad = found.target.encode(frame["y"])
    assert bad == 0
    assert np.array_equal(np.isnan(labels), np.isnan(found.labels))
    spec = catalog.from_dict({"name": "prop", "title": "p", "target": found.target.to_dict(),
                              "features": [{"name": "x", "kind": "numeric"}], "sources": [{"file": "p.parquet"}],
                              "dev": {"source": "p.parquet"}})
    again, bad = spec.target.encode(frame["y"])  # the definition as saved labels the same rows the same way
    assert bad == 0 and np.array_equal(np.nan_to_num(again, nan=-1), np.nan_to_num(labels, nan=-1))
    text = frame["y"].astype("string").str.strip()
    present = (frame["y"].notna() & (text != "")).to_numpy(dtype=bool)
    assert np.array_equal(~np.isnan(labels), present)  # every value that is there is labelled


# --------------------------------------------------------------------------- the label per split (Data page)
def test_the_label_per_split_is_summed_up_per_task() -> None:
    from core.charts import data as charts
    from core.charts.words import Words
    from core.data.profile import label_summary
    from core.dataset import Target

    binary = Target("y", positive="yes", negative="no", positive_name="yes", negative_name="no")
    splits = {"train": pd.Series([1, 0, 0, 1]), "test": pd.Series([0, 0, 1, 0])}
    summary = label_summary(splits, binary)
    assert summary.shares == {"train": {"no": 0.5, "yes": 0.5}, "test": {"no": 0.75, "yes": 0.25}}
    words = Words(positive="yes", negative="no")
    assert charts.label_balance(summary, words).to_json() == charts.class_balance(
        {"train": 0.5, "test": 0.25}, {"train": 4, "test": 4}, words).to_json()  # binary: the chart as before
    classes = Target("species", task="multiclass", classes=("Adelie", "Chinstrap", "Gentoo"),
                     class_labels=("Adelie", "Chinstrap", "Gentoo"))
    prepared = label_summary({"train": pd.Series([0, 1, 2, 2]), "prod": pd.Series(["Gentoo", "Adelie", None])},
                             classes)  # numbers are labels as prepared; text the values, encoded here
    assert prepared.shares == {"train": {"Adelie": 0.25, "Chinstrap": 0.25, "Gentoo": 0.5},
                               "prod": {"Adelie": 0.5, "Chinstrap": 0.0, "Gentoo": 0.5}}
    assert prepared.rows == {"train": 4, "prod": 2}
    fig = charts.label_balance(prepared, Words())
    assert [t.name for t in fig.data] == ["train", "prod"] and list(fig.data[0].x) == ["Adelie", "Chinstrap", "Gentoo"]
    assert "positive" not in fig.layout.title.text
    number = label_summary({"train": pd.Series([1.0, 2.0, 3.0, 10.0]), "test": pd.Series([2.0, np.nan])},
                           Target("price", task="regression", unit="EUR"))
    assert number.stats["train"]["mean"] == 4.0 and number.stats["train"]["median"] == 2.5
    assert number.stats["test"]["max"] == 2.0 and number.rows == {"train": 4, "test": 1} and not number.shares
    fig = charts.label_balance(number, Words())
    assert fig.data[0].type == "box" and fig.layout.title.text.startswith("Target price (EUR) per split")
    json.dumps(number.to_dict())
