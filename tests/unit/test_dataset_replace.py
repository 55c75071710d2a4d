"""`dataset add --replace` (issue 28, item 2): it replaces what the README names (the table, the
definition and the prepared data) and keeps everything else of the dataset's folder in place:
the inference log, stored batches, drift history, the queue of checks not yet in MLflow, the
model server's runtime files. While the dataset's model server runs, replacing (or removing) the
dataset is refused with the command that stops it, so no server is left writing into a deleted
log; `serve status` and `/metrics` keep telling the truth."""
from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from core import catalog, cli
from core.config import Settings
from core.data import dataset_store
from core.dataset import DatasetError
from core.serving import inference_log, server
from tests.unit.test_dataset_add_cli import _table, csv, home  # noqa: F401 (fixtures)

PREPARED = ("03_primary/data_filtered.parquet", "05_model_input/base_train.parquet")
KEPT = ("07_model_output/prod_predictions.parquet", "08_batches/0123abcd.parquet",
        "09_monitoring/pending_runs/0000000000001-abc.json", "09_monitoring/reference.json", "run/serve.log")


def _settings(home: Path, name: str = "churn") -> Settings:
    return Settings.from_env({"WORKBENCH_HOME": str(home)}, dataset=catalog.find(name, [catalog.user_dir(home)]))


def _fill(home: Path) -> tuple[Settings, dict[str, bytes]]:
    """Files of every kind in the dataset's folder, one row in its inference log; their bytes."""
    s = _settings(home)
    for i, rel in enumerate((*PREPARED, *KEPT)):
        path = s.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content {i} of {rel}".encode())
    row = {f: (1.0 if s.dataset.feature(f).kind != "categorical" else "basic") for f in s.features}
    inference_log.append(s, row, proba=0.7, threshold=0.5, model_version="1", latency_ms=3.0)
    kept = {rel: (s.data_dir / rel).read_bytes() for rel in KEPT}
    return s, kept


def test_replace_keeps_what_it_does_not_name_and_says_so(home: Path, csv: Path) -> None:  # noqa: F811
    dataset_store.add(home, csv, "churn", "churn")
    s, kept = _fill(home)
    again = dataset_store.add(home, _table(40, seed=9), "churn", "churn", replace=True)
    assert again.replaced and again.rows == 40
    for rel in PREPARED:  # the prepared data of the old table is gone ...
        assert not (s.data_dir / rel).exists(), rel
    assert {rel: (s.data_dir / rel).read_bytes() for rel in KEPT} == kept  # ... everything else stays
    assert inference_log.count(s) == 1  # the log still holds its request
    assert set(again.kept) == {"07_model_output", "08_batches", "09_monitoring", "inference_log.sqlite", "run"}
    assert again.to_dict()["kept"] == list(again.kept)
    assert not any(p.is_dir() for p in (catalog.user_dir(home) / dataset_store.STAGING).iterdir())


def test_replace_on_the_command_line_names_what_it_kept(home: Path, csv: Path,  # noqa: F811
                                                         capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--json"]) == 0
    _fill(home)
    capsys.readouterr()
    assert cli.main(["dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--replace", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["replaced"] and "08_batches" in out["kept"] and "inference_log.sqlite" in out["kept"]
    assert cli.main(["dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--replace"]) == 0
    text = capsys.readouterr().out
    assert "Kept in place" in text and "inference_log.sqlite" in text and "08_batches" in text


def test_a_failed_replace_puts_the_old_dataset_back(home: Path, csv: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_store.add(home, csv, "churn", "churn")
    s, kept = _fill(home)
    before = {p: p.read_bytes() for p in s.data_dir.rglob("*") if p.is_file()}
    real = dataset_store.os.rename

    def fail_on_new_table(src: object, dst: object) -> None:  # the new table cannot be moved in
        if ".staging" in str(src) and str(src).endswith("01_raw"):
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(dataset_store.os, "rename", fail_on_new_table)
    with pytest.raises(OSError, match="disk full"):
        dataset_store.add(home, _table(40, seed=9), "churn", "churn", replace=True)
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in s.data_dir.rglob("*") if p.is_file()} == before


@pytest.mark.slow
def test_replace_and_remove_are_refused_while_the_dataset_is_served(home: Path, csv: Path,  # noqa: F811
                                                                     capsys: pytest.CaptureFixture) -> None:
    from core.data import preparation
    from core.modeling import promotion, registry
    from core.modeling import model_io
    from core.serving import client
    from tests.unit.conftest import register_lr

    dataset_store.add(home, csv, "churn", "churn", features=["usage"])  # numbers only: register_lr's model
    s = _settings(home).replace(serve_port=server.free_port(), serve_workers=1)
    preparation.prepare(s)
    promotion.promote(s, register_lr(s)[0])
    server.start(s, started_by=server.BY_CLI)
    try:
        rows = model_io.feature_frame(preparation.load_split(s, "test").head(1), s.features)
        ask = client.Client(s.serve_url, features=s.features)
        ask.predict_proba(rows)
        _wait_rows(s, 1)
        before = {p: p.read_bytes() for p in s.data_dir.rglob("*") if p.is_file() and "run" not in p.parts
                  and not p.name.startswith("inference_log")}
        capsys.readouterr()
        code = cli.main(["dataset", "add", str(csv), "--name", "churn", "--target", "churn", "--replace", "--json"])
        error = json.loads(capsys.readouterr().out)["error"]
        assert code == 2 and error["kind"] == "DatasetError"
        assert "stop the model server first: python -m core serve stop --dataset churn" in error["message"]
        with pytest.raises(DatasetError, match="stop the model server first"):
            dataset_store.remove(home, "churn")
        assert {p: p.read_bytes() for p in before} == before  # nothing replaced
        now = server.status(s)
        assert now.running and now.port == s.serve_port  # `serve status` still finds it ...
        conn = http.client.HTTPConnection("127.0.0.1", s.serve_port, timeout=10)
        conn.request("GET", "/metrics")
        assert conn.getresponse().status == 200  # ... and its counters answer
        conn.close()
        ask.predict_proba(rows)
        ask.close()
        _wait_rows(s, 2)  # it writes into the log that is still there
        assert [x.port for x in server.stop_all(s)] == [s.serve_port]  # `serve stop --all` finds it
    finally:
        server.stop(s)
    assert not server.status(s).running
    assert dataset_store.add(home, csv, "churn", "churn", features=["usage"], replace=True).replaced  # stopped
    assert inference_log.count(_settings(home)) == 2


def _wait_rows(s: Settings, n: int, timeout_s: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while inference_log.count(s) < n:
        assert time.monotonic() < deadline, f"the server did not log {n} row(s)"
        time.sleep(0.1)


def _get_metrics(folder: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """GET /metrics through `metrics.with_metrics` (the wrapper the server's app has), with its
    counters' folder at `folder`; (status, body)."""
    import asyncio

    from core.serving import metrics

    monkeypatch.setenv(metrics.METRICS_DIR_ENV, str(folder))
    sent: list[dict] = []

    async def inner(scope: dict, receive: object, send: object) -> None:
        raise AssertionError("the model app is not asked for /metrics")

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/metrics", "method": "GET"}
    # in a thread of its own: an earlier browser test can leave the main thread's event loop
    # running, and asyncio.run refuses to start inside a running loop (as in test_scoring_app)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, metrics.with_metrics(inner)(scope, receive, send)).result()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]).decode()


def test_metrics_say_so_when_their_folder_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "run" / "metrics"
    folder.mkdir(parents=True)
    status, body = _get_metrics(folder, monkeypatch)
    assert status == 200
    folder.rmdir()  # e.g. the dataset's folder removed by hand while the server ran
    status, body = _get_metrics(folder, monkeypatch)
    assert status == 503 and str(folder) in body and "restart the model server" in body
