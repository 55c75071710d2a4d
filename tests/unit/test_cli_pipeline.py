"""The command line (`core/cli/`) without data, and the pipeline status (`core/pipeline.py`) of
the tiny home."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from core import catalog, cli
from core.pipeline import pipeline_status
from tests.unit.conftest import Lab, with_spec


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty workbench home for the command line; nothing from the caller's environment."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR",
                 "WORKBENCH_SERVE_PORT", "WORKBENCH_SERVE_WORKERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    return tmp_path


def _nothing_written(home: Path) -> bool:
    return not (home / "data").exists() and not (home / "mlruns").exists()


def test_dataset_list_prints_one_json_list_with_kobe_active(env: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["dataset", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    rows = json.loads(out)
    assert isinstance(rows, list) and [r["name"] for r in rows] == sorted(catalog.available())
    kobe = next(r for r in rows if r["name"] == "kobe")
    assert kobe["active"] is True and kobe["prepared"] is False and kobe["champion"] is None
    assert kobe["target"] == "shot_made_flag" and "shot_distance" in kobe["features"]
    assert kobe["definition"] == str(catalog.BUILTIN_DIR / "kobe" / "dataset.toml")
    assert sum(r["active"] for r in rows) == 1
    assert _nothing_written(env)


def test_dataset_list_without_json_is_indented(env: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["dataset", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[\n") and json.loads(out)[0]["name"]


@pytest.mark.parametrize("argv", [["--dataset", "nosuch", "dataset", "list"], ["dataset", "list"]])
def test_an_unknown_dataset_exits_2_listing_the_known_ones(env: Path, argv: list[str],
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    if "--dataset" not in argv:
        monkeypatch.setenv("WORKBENCH_DATASET", "nosuch")
    assert cli.main(argv) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err.startswith("error: There is no dataset called 'nosuch'")
    assert "Known datasets: kobe" in err.err and "Traceback" not in err.err


@pytest.mark.parametrize("argv, message", [
    (["predict", "--json", "not json"], "--json is not valid JSON"),
    (["predict", "--json", "[1, 2]"], "--json must be one JSON object"),
    (["predict", "--json", '{"lat": 34.0}'], "Invalid shot: missing column(s)"),
    (["drift"], "give --batch FILE or --inference-log N"),
    (["drift", "--json", "--batch", "nowhere.csv"], "does not exist"),
    (["apply", "--in-process", "--json"], "There is no production batch yet"),
])
def test_expected_problems_exit_2_with_a_message_and_no_traceback(env: Path, argv: list[str], message: str,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    if "--json" in argv:  # the error as one JSON object on stdout too
        assert captured.out.count("\n") == 1 and message in json.loads(captured.out)["error"]["message"]
    else:
        assert captured.out == ""
    before, found, after = captured.err.partition("error: ")
    assert found and message in after and "Traceback" not in captured.err
    assert all(line.startswith(("[", "note: ")) for line in before.splitlines())  # progress lines, notes first
    assert _nothing_written(env)


def test_not_json_shows_an_example_row(env: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["predict", "--json", "{oops"]) == 2
    err = capsys.readouterr().err
    example = catalog.find("kobe").example_row()
    assert json.dumps(example) in err


def test_a_usage_error_exits_2(env: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["predict"]) == 2
    assert "--input" in capsys.readouterr().err


def test_help_texts_speak_of_the_dataset(spec, capsys: pytest.CaptureFixture) -> None:
    parser = cli.build_parser(spec)
    top = parser.format_help()
    assert "Tiny churn" in top and "score one customer on the running model server" in top
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["predict", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "the customer as a JSON object" in text and "P(churned)" in text
    assert "".join(json.dumps(spec.example_row()).split()) in "".join(text.split())
    assert not re.search(r"\bshots?\b", top + text)


# --------------------------------------------------------------------------- the pipeline status
def test_the_status_of_the_tiny_home(lab: Lab) -> None:
    st = pipeline_status(lab.settings)
    assert st.data_prepared and st.champion_version == lab.version
    assert st.champion_detail == f"tiny-model v{lab.version}"
    assert not st.server_running and "would listen on" in st.server_detail
    assert st.next_step == "Serve the champion and try a customer" and st.next_stage == "serve"
    assert st.store.startswith("embedded SQLite at ") and st.last_check in ("none", "drift", "no drift")


def test_the_status_says_what_comes_next(lab: Lab, tiny) -> None:
    untrained = pipeline_status(with_spec(lab.settings, model_name="tiny-untrained"))
    assert untrained.data_prepared and untrained.champion_version is None
    assert (untrained.next_step, untrained.next_stage) == ("Train and register a champion", "train")
    empty = pipeline_status(tiny)
    assert not empty.data_prepared and empty.data_detail == "Not prepared yet"
    assert (empty.next_step, empty.next_stage) == ("Prepare the data", "data")
    assert empty.last_check == "none"


def test_with_a_server_running_the_next_step_scores_a_batch(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a champion served, the next step is the production batch, or an upload for a dataset
    that sets no production rows apart (issue 30: it said "Score the production batch" there too)."""
    from core.pipeline import server

    real = server.status(lab.settings)
    monkeypatch.setattr(server, "status", lambda s: dataclasses.replace(real, running=True))
    with_prod = pipeline_status(lab.settings)
    assert (with_prod.next_step, with_prod.next_stage) == ("Score the production batch", "production")
    no_prod = pipeline_status(with_spec(lab.settings, prod=None))
    assert (no_prod.next_step, no_prod.next_stage) == ("Upload a batch of customers and score it", "production")
