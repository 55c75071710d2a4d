"""Bringing one's own dataset in (`core/data/dataset_store.py`, `core/catalog.py`'s user datasets,
`core/cli/datasets.py`): reading a table, saving it atomically, choosing the active dataset, and
`python -m core dataset add / use / list`. Every refusal exits 2 and writes nothing."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import catalog, cli
from core.config import Settings
from core.data import dataset_store
from core.data.infer import infer
from core.dataset import DatasetError
from core.files import sha256_file

ROOT = Path(__file__).resolve().parents[2]
N = 80


def _table(n: int = N, seed: int = 2) -> pd.DataFrame:
    """A tiny churn table: an id, a number, a category, a flag, a year and a yes/no label (two unlabelled)."""
    rng = np.random.default_rng(seed)
    churn = np.where(rng.random(n) < 0.3, "yes", "no").astype(object)
    churn[:2] = None
    return pd.DataFrame({"customer": [f"c{i:03d}" for i in range(n)], "usage": rng.gamma(2.0, 10.0, n).round(1),
                         "plan": rng.choice(["basic", "pro"], n), "online": rng.random(n) < 0.4,
                         "year": np.where(np.arange(n) < 60, 2023, 2024), "churn": churn})


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home for in-process calls and the command line; nothing from the caller's environment."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "churn.csv"
    _table().to_csv(path, sep=";", index=False)
    return path


def _saved(home: Path) -> list[str]:
    """What is under data/datasets/ (the staging folder's lock files aside)."""
    root = catalog.user_dir(home)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".staging" not in p.parts) \
        if root.exists() else []


def _json_error(out: str) -> dict:
    body = json.loads(out)
    assert set(body) == {"error"} and set(body["error"]) == {"kind", "message"}
    return body["error"]


# --------------------------------------------------------------------------- reading
def test_csv_with_any_separator_and_parquet_are_read(tmp_path: Path) -> None:
    table = _table(10)
    for sep, suffix in ((",", ".csv"), (";", ".csv"), ("\t", ".tsv"), ("|", ".txt")):
        path = tmp_path / f"t{suffix}"
        table.to_csv(path, sep=sep, index=False)
        frame = dataset_store.read_table(path)
        assert list(frame.columns) == list(table.columns) and frame["usage"].dtype == "float64"
    table.to_parquet(tmp_path / "t.parquet", index=False)
    assert dataset_store.read_table(tmp_path / "t.parquet")["online"].dtype == bool


def test_a_semicolon_file_with_decimal_commas_reads_numbers(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("price;name;code\n3,5;a;1,2\n4;b;x\n-0,25;c;3\n", encoding="utf-8")
    frame = dataset_store.read_table(path)
    assert frame["price"].tolist() == [3.5, 4.0, -0.25] and frame["code"].dtype == object


@pytest.mark.parametrize("content, name, message", [
    (b"", "empty.csv", r"is empty \(0 bytes\)"),
    (b"\x89PNG\r\n\x1a\n...", "picture.csv", "not a CSV file, it looks like a PNG image"),
    (b"PK\x03\x04rest", "book.xlsx", "a ZIP archive"),
    (b"PAR1 broken", "broken.parquet", "is not a readable parquet file"),
    (b"a,b\n1,2\n3,4,5\n", "ragged.csv", r"1 line\(s\) have more or fewer fields than the header's 2"),
    (b"a,a\n1,2\n", "dupes.csv", r"column\(s\) 'a' appear more than once"),
    (b"caf\xe9,b\n1,2\n", "latin.csv", "not a UTF-8 text file"),
])
def test_unreadable_files_are_refused_with_the_reason(tmp_path: Path, content: bytes, name: str, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        dataset_store.read_table(path)
    with pytest.raises(DatasetError, match="does not exist"):
        dataset_store.read_table(tmp_path / "nowhere.csv")


# --------------------------------------------------------------------------- adding
def test_add_saves_the_definition_and_the_table_where_settings_look(home: Path, csv: Path) -> None:
    result = dataset_store.add(home, csv, "churn", "churn", prod_where="year >= 2024")
    folder = catalog.user_dir(home) / "churn"
    assert result.folder == str(folder) and not result.replaced
    assert (result.rows, result.labelled_rows, result.unlabelled_rows) == (N, N - 2, 2)
    assert (result.dev_rows, result.prod_rows) == (60, 20)
    assert result.features == {"usage": "numeric", "plan": "categorical", "online": "binary"}  # true/false
    assert result.inference is not None and "customer" in {e["column"] for e in result.inference.excluded}
    assert _saved(home) == ["churn", "churn/01_raw", "churn/01_raw/churn.parquet", "churn/dataset.toml"]
    spec = catalog.load(folder / "dataset.toml")
    assert spec.sources[0].sha256 == sha256_file(folder / "01_raw" / "churn.parquet") == result.sha256
    assert spec.sources[0].url == "" and spec.target.positive == "yes"
    s = Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=spec)
    assert s.data_dir == folder and s.raw_dev == folder / "01_raw" / "churn.parquet"  # acquire finds it present
    assert pd.read_parquet(s.raw_dev).shape == (N, 6)
    assert set(pd.read_parquet(s.raw_dev)["online"]) == {0.0, 1.0}  # saved as the binary feature's numbers
    assert spec.feature("online").value_labels == {"0": "False", "1": "True"}
    json.dumps(result.to_dict())  # plain data


def test_an_existing_name_is_refused_unless_replace_and_nothing_changes(home: Path, csv: Path) -> None:
    first = dataset_store.add(home, csv, "churn", "churn")
    before = {p: p.read_bytes() for p in (catalog.user_dir(home) / "churn").rglob("*") if p.is_file()}
    with pytest.raises(DatasetError, match=r"There is already a dataset called 'churn' .*--replace"):
        dataset_store.add(home, _table(40, seed=9), "churn", "churn")
    assert {p: p.read_bytes() for p in before} == before
    again = dataset_store.add(home, _table(40, seed=9), "churn", "churn", replace=True)
    assert again.replaced and again.rows == 40 and again.sha256 != first.sha256
    assert catalog.load(Path(again.definition_path)).sources[0].sha256 == again.sha256


def test_an_edited_definition_is_taken_and_a_broken_one_saves_nothing(home: Path) -> None:
    table = _table()
    definition = infer(table, "edited", "churn").definition
    definition["title"] = "Churn, edited"
    definition["features"][0]["label"] = "Monthly usage"
    result = dataset_store.add(home, table, "edited", None, definition=definition)
    spec = catalog.load(Path(result.definition_path))
    assert spec.title == "Churn, edited" and spec.features_spec[0].label == "Monthly usage"
    assert result.inference is None and result.labelled_rows == N - 2
    broken = {**definition, "name": "broken", "features": [{"name": "usage", "kind": "nosuch"}]}
    with pytest.raises(DatasetError, match="kind must be one of"):
        dataset_store.add(home, table, "broken", None, definition=broken)
    missing = {**definition, "name": "missing", "features": [{"name": "nosuch", "kind": "numeric"}]}
    with pytest.raises(DatasetError, match=r"The table lacks column\(s\) nosuch"):
        dataset_store.add(home, table, "missing", None, definition=missing)
    narrow = {**definition, "name": "narrow", "features": [{"name": "usage", "kind": "numeric", "max": 1.0}]}
    assert any("usage: out-of-domain values" in w for w in dataset_store.add(home, table, "narrow", None,
                                                                             definition=narrow).warnings)
    assert sorted(p for p in _saved(home) if "/" not in p) == ["edited", "narrow"]


def test_a_crash_while_saving_leaves_nothing_behind(home: Path, csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_store.add(home, csv, "churn", "churn")
    before = _saved(home)

    def crash(*args: object) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(dataset_store, "_swap", crash)
    with pytest.raises(OSError, match="disk full"):
        dataset_store.add(home, csv, "churn", "churn", replace=True)
    with pytest.raises(OSError, match="disk full"):
        dataset_store.add(home, csv, "other", "churn")
    assert _saved(home) == before
    assert not any(p.is_dir() for p in (catalog.user_dir(home) / dataset_store.STAGING).iterdir())


def test_remove_deletes_an_added_dataset_and_its_active_choice(home: Path, csv: Path) -> None:
    dataset_store.add(home, csv, "churn", "churn")
    catalog.set_active(home, "churn")
    dataset_store.remove(home, "churn")
    assert _saved(home) == [] and catalog.active_name(home) == "kobe" and not catalog.active_file(home).exists()
    with pytest.raises(DatasetError, match="built-in"):
        dataset_store.remove(home, "kobe")
    with pytest.raises(DatasetError, match="no dataset called 'churn'"):
        dataset_store.remove(home, "churn")


# --------------------------------------------------------------------------- the active dataset
def test_the_active_dataset_is_chosen_in_the_home_and_settings_follow_it(home: Path, csv: Path) -> None:
    assert catalog.active_name(home) == "kobe" and Settings.from_env().dataset.name == "kobe"
    with pytest.raises(DatasetError, match="no dataset called 'mine'"):
        catalog.set_active(home, "mine")
    dataset_store.add(home, csv, "mine", "churn")
    assert catalog.set_active(home, "mine").read_text() == "mine\n"
    assert catalog.active_name(home) == "mine" and Settings.from_env().dataset.name == "mine"
    kobe = catalog.find("kobe")
    assert Settings.from_env(dataset=kobe).dataset.name == "kobe"  # an explicit dataset first
    assert Settings.from_env({"WORKBENCH_HOME": str(home), "WORKBENCH_DATASET": "kobe"}).dataset.name == "kobe"
    catalog.active_file(home).write_text("gone\n")  # a dataset that no longer exists: the default
    assert catalog.active_name(home) == "kobe"


# --------------------------------------------------------------------------- the command line
def test_dataset_add_json_prints_the_inference(home: Path, csv: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--positive", "no",
                     "--prod-where", "year >= 2024", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert result["name"] == "churn" and result["prod_rows"] == 20 and result["unlabelled_rows"] == 2
    assert result["inference"]["positive_note"].startswith("positive class: 'no' (as chosen")
    assert result["definition_path"] == str(catalog.user_dir(home) / "churn" / "dataset.toml")


def test_dataset_add_with_chosen_features(home: Path, csv: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["dataset", "add", str(csv), "--name", "two", "--target", "churn", "--features",
                     "usage, customer", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["features"] == {"usage": "numeric", "customer": "categorical"}
    assert any(w.startswith("customer kept as a feature although it looks like an identifier")
               for w in result["warnings"])


@pytest.mark.parametrize("argv, message", [
    (["{bad}", "--name", "x", "--target", "churn"], "is not a readable CSV file|not a UTF-8|looks like"),
    (["{one}", "--name", "x", "--target", "churn"], r"The table has 1 column\(s\)"),
    (["{csv}", "--name", "x", "--target", "nosuch"], "There is no column 'nosuch' to predict"),
    (["{csv}", "--name", "x", "--target", "plan3", "--task", "binary"], "a binary target holds exactly two classes"),
    (["{csv}", "--name", "Bad Name", "--target", "churn"], "The dataset name 'Bad Name' is not allowed"),
    (["{csv}", "--name", "kobe", "--target", "churn"], "'kobe' is a built-in dataset"),
    (["{csv}", "--name", "taken", "--target", "churn"], "There is already a dataset called 'taken'"),
    (["{csv}", "--name", "x", "--target", "churn", "--prod-where", "nosuch >"], "cannot be applied"),
    (["{csv}", "--name", "x", "--target", "churn", "--prod-where", "year > 3000"], "selects no row"),
    (["{csv}", "--name", "x", "--target", "churn", "--positive", "maybe"], "--positive 'maybe' is not a value"),
    (["{csv}", "--name", "x", "--target", "churn", "--features", " , "], "--features needs column names"),
    (["{csv}", "--name", "x"], "the following arguments are required: --target"),
    (["{tmp}/nowhere.csv", "--name", "x", "--target", "churn"], "does not exist"),
])
def test_every_refusal_exits_2_with_one_message_and_saves_nothing(home: Path, tmp_path: Path, csv: Path,
                                                                   argv: list[str], message: str,
                                                                   capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "bad.csv").write_bytes(b"\x89PNG\r\n\x1a\nnot a table")
    pd.DataFrame({"churn": ["yes", "no"]}).to_csv(tmp_path / "one.csv", index=False)
    table = _table().assign(plan3=lambda t: np.resize(["a", "b", "c"], len(t)))
    table.to_csv(csv, index=False)
    dataset_store.add(home, table, "taken", "churn")
    before = _saved(home)
    words = [w.format(csv=csv, bad=tmp_path / "bad.csv", one=tmp_path / "one.csv", tmp=tmp_path) for w in argv]
    assert cli.main(["dataset", "add", *words, "--json"]) == 2
    captured = capsys.readouterr()
    error = _json_error(captured.out)
    assert re.search(message, error["message"]), error["message"]
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert _saved(home) == before


def test_use_then_list_shows_the_added_dataset_active(home: Path, csv: Path, capsys: pytest.CaptureFixture) -> None:
    dataset_store.add(home, csv, "churn", "churn")
    assert cli.main(["dataset", "use", "churn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["active"] == "churn"
    assert cli.main(["dataset", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"kobe", "churn"} and rows["churn"]["active"] and not rows["kobe"]["active"]
    assert rows["churn"]["builtin"] is False and rows["kobe"]["builtin"] is True
    assert rows["churn"]["features"] == ["usage", "plan", "online", "year"] and rows["churn"]["prepared"] is False
    assert cli.main(["--dataset", "kobe", "dataset", "list", "--json"]) == 0  # --dataset finds both kinds
    assert [r["name"] for r in json.loads(capsys.readouterr().out) if r["active"]] == ["kobe"]
    assert cli.main(["dataset", "use", "nosuch"]) == 2
    assert "There is no dataset called 'nosuch'. Known datasets: churn, kobe" in capsys.readouterr().err


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DATASET", "MLFLOW_TRACKING_URI")}
    env["WORKBENCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_command_line_adds_uses_and_lists_a_dataset(home: Path, csv: Path) -> None:
    added = _run(home, "dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--prod-where",
                 "year >= 2024")
    assert added.returncode == 0, added.stderr
    out = added.stdout
    assert "Added dataset 'churn': 80 rows (78 labelled, 2 unlabelled)." in out
    assert "Positive class: 'yes' (the minority" in out and "Production rows: 20 (dev rows: 60)." in out
    assert "customer" in out and "an identifier" in out and "plan" in out and "categorical" in out
    assert str(catalog.user_dir(home) / "churn" / "dataset.toml") in out
    used = _run(home, "dataset", "use", "churn")
    assert used.returncode == 0 and "'churn' (Churn) is now the active dataset" in used.stdout
    listed = _run(home, "dataset", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout) if r["active"]] == ["churn"]


def test_a_refusal_on_the_command_line_has_no_traceback(home: Path, tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,c\n1,2,x\n3,4,y\n5,6,z\n")
    refused = _run(home, "dataset", "add", str(tmp_path / "t.csv"), "--name", "abc", "--target", "c")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: The target 'c' has 3 classes too rare to split")
    assert "Traceback" not in refused.stderr and _saved(home) == []


# --------------------------------------------------------------------------- a yes/no feature's words in `predict`
class _Recorder:
    """A stand-in model server answering 0.7 for every row and keeping the bodies it was sent."""

    bodies: list[dict] = []

    @classmethod
    def handler(cls) -> type:
        from http.server import BaseHTTPRequestHandler

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                cls.bodies.append(body)
                data = json.dumps({"predictions": [[0.3, 0.7]] * len(body["dataframe_split"]["data"])}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def test_predict_takes_a_yes_no_features_word_and_refuses_any_other(home: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """Issue 30: `--row '{"international_plan": "yes"}'` was refused on a dataset whose binary
    feature was inferred from yes/no words."""
    from tests.unit.conftest import serve_stub

    table = _table().assign(international_plan=np.where(np.arange(N) % 3 == 0, "Yes", "No"))
    path = tmp_path / "plans.csv"
    table.to_csv(path, index=False)
    assert cli.main(["dataset", "add", str(path), "--name", "plans", "--target", "churn", "--json"]) == 0
    capsys.readouterr()
    spec = catalog.load(catalog.user_dir(home) / "plans" / "dataset.toml")
    plan = spec.feature("international_plan")
    assert plan.kind == "binary" and dict(plan.value_labels) == {"0": "No", "1": "Yes"}
    row = {**spec.example_row(), "international_plan": "yES"}
    _Recorder.bodies = []
    with serve_stub(_Recorder.handler()) as url:
        assert cli.main(["--dataset", "plans", "predict", "--input", json.dumps(row), "--url", url, "--json"]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["proba"] == pytest.approx(0.7) and answer["dataset"] == "plans"
        sent = _Recorder.bodies[-1]["dataframe_split"]
        assert sent["data"][0][sent["columns"].index("international_plan")] == 1.0  # the value the word names
        for word, value in (("no", 0.0), (" No ", 0.0), ("YES", 1.0)):
            assert spec.rules.validate_row({**row, "international_plan": word})["international_plan"] == value
        n_sent = len(_Recorder.bodies)
        for other in ("maybe", "1", "true", ""):
            assert cli.main(["--dataset", "plans", "predict", "--input",
                             json.dumps({**row, "international_plan": other}), "--url", url, "--json"]) == 2
            message = json.loads(capsys.readouterr().out)["error"]["message"]
            assert "international_plan must be one of 0, 1 or the word 'No' or 'Yes' (any case)" in message
            assert repr(other) in message
        assert len(_Recorder.bodies) == n_sent  # refused before any request
    other_feature = spec.rules.by_name["usage"]
    assert other_feature.words == () and other_feature.problem("yes") is not None  # a number stays a number
