"""Scoring to a file of one's choosing (`apply --output`, `score(output=...)`), the class name beside
the 0/1 class, and where an uploaded batch's scored rows go (issue 30, item 3), on the tiny champion."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core import cli
from core.cli import run as cli_run
from core.data import batches, preparation
from core.modeling import registry
from core.scoring import local
from core.scoring.local import ScoringError
from tests.unit.conftest import FEATURES, TARGET, Lab


@pytest.fixture
def home(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """The lab's home for the command line."""
    for name in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET", "WORKBENCH_DATA_DIR", "KOBE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_HOME", str(lab.settings.home))
    monkeypatch.setattr(cli_run, "_settings", lambda argv: lab.settings)  # the tiny definition lives outside the home
    return lab  # the shared lab's default output is not written here: test_scoring counts its outputs


def apply(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, dict, str]:
    code = cli.main(["apply", "--in-process", "--json", *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else {}), out.err


def default_output(lab: Lab) -> tuple[int, bytes] | None:
    """The default output's state (None while absent), to see that `--output` leaves it alone."""
    p = lab.settings.predictions_path
    return (p.stat().st_mtime_ns, p.read_bytes()) if p.exists() else None


@pytest.mark.parametrize("name", ["scored.csv", "new/folder/scored.parquet"])
def test_apply_output_writes_the_scored_rows_there_and_leaves_the_default_alone(
        home: Lab, tmp_path: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    before = default_output(home)
    target = tmp_path / name
    code, result, err = apply(["--output", str(target)], capsys)
    assert code == 0, err
    assert result["output"] == str(target.resolve()) and result["path"] == "in-process"  # the JSON's fields kept
    assert {"rows", "model_version", "metrics", "mlflow_run_id", "seconds", "stale", "threshold"} <= set(result)
    assert result["checked"] is True  # in-process: the champion from this dataset's own registry
    frame = pd.read_csv(target) if name.endswith(".csv") else pd.read_parquet(target)
    prod = preparation.load_split(home.settings, "prod")
    assert len(frame) == result["rows"] == len(prod)
    assert list(frame.columns) == [*FEATURES, "proba_churned", "pred_churned", "predicted_churn", "class_name",
                                   TARGET, "model_version"]
    named = frame["pred_churned"].map({1: "churned", 0: "stayed"})
    assert (frame["class_name"] == named).all() and set(frame["class_name"]) == {"churned", "stayed"}
    assert default_output(home) == before  # prod_predictions.parquet untouched
    assert not [p for p in target.parent.iterdir() if p.name != target.name]  # no temporary file left


@pytest.mark.parametrize("name", ["scored.xlsx", "scored", "scored.json"])
def test_apply_output_with_another_extension_exits_2_before_any_work(
        home: Lab, tmp_path: Path, capsys: pytest.CaptureFixture, name: str) -> None:
    from core import tracking

    before, runs = default_output(home), len(tracking.runs(home.settings, local.APPLY_RUN))
    code, result, err = apply(["--output", str(tmp_path / "out" / name)], capsys)
    assert code == 2
    assert "--output" in err + json.dumps(result) and ".csv or .parquet" in err + json.dumps(result)
    assert not (tmp_path / "out").exists()  # nothing written, no folder made
    assert default_output(home) == before and len(tracking.runs(home.settings, local.APPLY_RUN)) == runs


def test_score_refuses_another_extension_before_reading_the_batch(lab: Lab, tmp_path: Path) -> None:
    with pytest.raises(ScoringError, match="name a .csv or .parquet file"):
        local.score(lab.settings, registry.champion(lab.settings), batch=tmp_path / "missing.csv",
                    in_process=True, output=tmp_path / "x.txt")
    assert not (tmp_path / "x.txt").exists()


def test_a_csv_output_neutralises_formulas(lab: Lab, tmp_path: Path) -> None:
    frame = pd.DataFrame({"=cmd": ["=1+1", "ok"], "n": [-1.5, 2.0]})
    path = local.write_scored(frame, tmp_path / "f.csv")
    text = path.read_text()
    assert text.splitlines() == ["'=cmd,n", "'=1+1,-1.5", "ok,2.0"]


def test_an_uploaded_batch_is_scored_beside_not_over_the_production_output(lab: Lab, tmp_path: Path) -> None:
    """What the Production page does with an upload: validate it, score it to `upload_output_path`."""
    s = lab.settings.replace(home=tmp_path / "other", tracking_uri_override=lab.settings.tracking_uri)
    prod = preparation.load_split(lab.settings, "prod").head(40)
    data = prod.drop(columns=[TARGET]).to_csv(index=False).encode()
    champion = registry.champion(s)
    batch = batches.read_batch(data, champion.scoped(s), name="my batch #1.csv")
    dest = local.upload_output_path(s, batch)
    assert dest.parent == s.uploads_output_dir and dest.name == f"my_batch_1-{batch.digest[:12]}.parquet"
    r = local.score(s, champion, batch=batch, in_process=True, output=dest)
    assert r.output == str(dest) and r.rows == 40 and r.metrics is None and r.batch_source == "upload:my batch #1.csv"
    assert not s.predictions_path.exists()
    scored = local.load_scored(s, dest)
    assert TARGET not in scored and set(scored["class_name"]) <= {"churned", "stayed"}
    with pytest.raises(batches.BatchError, match="usage_hours"):  # a bad upload: every problem named
        batches.read_batch(b"usage_hours,support_calls,premium\n120,1,0\n", champion.scoped(s), name="bad.csv")


def test_score_to_an_output_leaves_an_existing_default_output_as_it_was(lab: Lab, tmp_path: Path) -> None:
    s = lab.settings.replace(home=tmp_path / "other", tracking_uri_override=lab.settings.tracking_uri)
    path = tmp_path / "batch.parquet"
    preparation.load_split(lab.settings, "prod").head(25).to_parquet(path)
    champion = registry.champion(s)
    local.score(s, champion, batch=path, in_process=True)  # the default output, written once
    before = (s.predictions_path.stat().st_mtime_ns, s.predictions_path.read_bytes())
    r = local.score(s, champion, batch=path, in_process=True, threshold=0.2, output=tmp_path / "mine.csv")
    assert (s.predictions_path.stat().st_mtime_ns, s.predictions_path.read_bytes()) == before
    assert r.kept_previous is None and [p.name for p in s.model_output_dir.iterdir()] == [s.predictions_path.name]
    assert len(pd.read_csv(r.output)) == 25


# --------------------------------------------------------------------------- apply's `checked`, as predict's
def _server(identity: dict[str, str]):
    """A stand-in model server (0.6 for every row it is sent, JSON or parquet) answering with the
    given identity headers (none: a stock `mlflow models serve`)."""
    import io
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, payload: bytes) -> None:
            self.send_response(200)
            for name, value in {**identity, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802 - /ping
            self._answer(b"\n")

        def do_POST(self) -> None:  # noqa: N802 - /invocations
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            n = (len(pd.read_parquet(io.BytesIO(raw))) if "parquet" in self.headers.get("Content-Type", "")
                 else len(json.loads(raw)["dataframe_split"]["data"]))
            self._answer(json.dumps({"predictions": [[0.4, 0.6]] * n}).encode())

    return Handler


@pytest.mark.parametrize("names", [True, False])
def test_apply_says_whether_the_server_named_the_datasets_model(home: Lab, tmp_path: Path, names: bool,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from core.serving import client
    from tests.unit.conftest import serve_stub

    s = home.settings
    identity = client.ServerIdentity(s.dataset.name, s.model_name, home.version)
    headers = {k.decode(): v.decode() for k, v in identity.headers()} if names else {}
    with serve_stub(_server(headers)) as url:
        code = cli.main(["apply", "--via", url, "--output", str(tmp_path / "scored.parquet"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result["path"] == "http" and result["rows"] == len(preparation.load_split(s, "prod"))
    assert result["checked"] is names
    assert ("does not say which dataset and model it serves" in out.err) is not names
