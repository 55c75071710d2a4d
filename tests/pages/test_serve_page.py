"""Serve page in AppTest against a real model server."""
from __future__ import annotations

import os
import signal

import psutil

from core.config import Settings
from core.serving import inference_log, server
from ui.text import md


def test_serve_page_without_champion_says_train_first(run_page, prepared_settings: Settings) -> None:
    at = run_page("pages/4_Serve.py", prepared_settings)
    assert not at.exception
    assert "No champion yet" in at.info[0].value


def test_submit_scores_one_shot_and_logs_it(run_page, served_settings: Settings) -> None:
    at = run_page("pages/4_Serve.py", served_settings)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Server"] == "up" and metrics["Version served"] == "v1"
    workers = server.status(served_settings).workers
    assert any(f"{workers} worker(s)" in c.value for c in at.caption)
    assert "click **Predict**" in at.info[0].value
    before = inference_log.count(served_settings)
    distance = next(n for n in at.number_input if n.label.startswith("Shot distance"))
    distance.set_value(79)  # beyond anything seen in training
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["P(made)"].endswith("%") and metrics["Latency"].endswith(" ms")
    name = next(v for k, v in metrics.items() if k.startswith("Class at"))
    value = {"Made": 1, "Missed": 0}[name]  # the class as `predict --json` names it: class, class_name, label
    assert any(c.value.startswith(f"Class {name.lower()}: {md('shot_made_flag')} = {value} in the data; "
                                  f'`predict --json` prints "class": {value}, "class_name": "{name.lower()}"')
               for c in at.caption)
    # the warning names the column as text (Markdown-escaped: `shot\_distance` shows as shot_distance)
    assert any(md("shot_distance = 79 lies outside the training range") in w.value for w in at.warning)
    assert inference_log.count(served_settings) == before + 1
    assert "Traceback" not in " ".join(e.value for e in at.error)


def test_killed_server_is_reported_down_and_restarts(run_page, served_settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", str(served_settings.serve_port))  # restart on the same port
    at = run_page("pages/4_Serve.py", served_settings)
    st = server.status(served_settings)
    group = [psutil.Process(st.pid), *psutil.Process(st.pid).children(recursive=True)]
    os.killpg(st.pid, signal.SIGKILL)
    psutil.wait_procs(group, timeout=10)
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert "The model server is down" in at.error[0].value
    restart = [b for b in at.button if b.label == "Restart server"]
    assert restart
    restart[0].click().run()
    assert not at.exception
    assert not at.error, at.error[0].value
    assert {m.label: m.value for m in at.metric}["Server"] == "up"
    assert server.status(served_settings).running
