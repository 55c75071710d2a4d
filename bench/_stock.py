"""The stock baseline of the serving benchmarks: the champion's fitted pipeline logged with plain
`mlflow.sklearn.log_model` (MLflow's own sklearn loader, a signature inferred from float columns)
and served by `mlflow models serve` as it runs out of the box (uvicorn's pure-Python h11 parser,
asyncio loop, access log, one worker), queried with `requests`."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Any, Iterator

import requests

from core import tracking
from core.data import preparation
from core.modeling import model_io
from core.serving import server


def stock_model_uri(settings: Any, model: Any) -> str:
    """`model` logged the stock way in the settings' experiment; its URI."""
    import mlflow
    from mlflow.models import infer_signature

    train = preparation.load_split(settings, "train")
    x = model_io.feature_frame(train, settings.features, settings.dataset.categorical_features).head(5)
    with mlflow.start_run(run_name="bench-stock-baseline", experiment_id=tracking.use(settings)):
        info = mlflow.sklearn.log_model(
            model, name="stock-model", signature=infer_signature(x, model.predict_proba(x)), input_example=x,
            pyfunc_predict_fn="predict_proba", pip_requirements=model_io.model_requirements(model),
            serialization_format="skops", skops_trusted_types=model_io.trusted_types(model))
    return info.model_uri


@contextlib.contextmanager
def stock_server(settings: Any, model_uri: str, workers: int = 1) -> Iterator[str]:
    """`mlflow models serve` of `model_uri` on a free port without any speed setting; its URL."""
    port = server.free_port()
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(MLFLOW_TRACKING_URI=settings.tracking_uri, MLFLOW_REGISTRY_URI=settings.tracking_uri,
               UVICORN_HTTP="h11", UVICORN_LOOP="asyncio", UVICORN_ACCESS_LOG="true")
    cmd = [os.sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the stock server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
