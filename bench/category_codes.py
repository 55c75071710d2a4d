"""A served single row against a categorical feature of 110,000 categories (issue 28): the model's
category codes from scikit-learn's `OrdinalEncoder` (before) against the loader's lookup built once
(`core/modeling/category_codes.py`, after), measured in the same run.

One definition in a throwaway home (`usage` a number, `plan` 3 categories, `code` --categories
categories, both categories nullable); the definition's pipeline (codes, one-hot / target
encoding) and a logistic regression fitted on --rows synthetic rows, logged as training logs it.
Two copies of the logged folder are registered the same way (`runs:/.../model`) as versions of
one model: "after" as logged, "before" with the loader of `--base` (`code/pyfunc_model.py` of
that commit, no `code/category_codes.py`): what a model logged before this change carries.
Then, the two taking turns:

- in-process: a fresh process loads the version (`mlflow.pyfunc.load_model`), then times
  --calls one-row `predict` calls after a warm-up (median and p99; the load time too), and in
  the same process the codes step alone (the encoder, or its stand-in) and the scikit-learn
  pipeline's `predict_proba` against what the loader scores with, taking turns;
- over HTTP: the version made champion and served by `python -m core serve`, one row per
  request over a kept-alive `http.client` connection (--requests after 20 warm-up; p50, p99).

The two versions' probabilities are compared (they must be equal); the load average is printed
with every figure.

    KOBE_DATA_DIR=/work/shared/data/kobe .venv/bin/python bench/category_codes.py
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASET = "codes"
TOML = """\
name = "{name}"
title = "Many codes"
[target]
column = "bought"
positive = "yes"
negative = "no"
[[features]]
name = "usage"
kind = "numeric"
min = 0
max = 100
nullable = true
[[features]]
name = "plan"
kind = "categorical"
values = ["basic", "plus", "pro"]
nullable = true
[[features]]
name = "code"
kind = "categorical"
values = {codes}
nullable = true
[[sources]]
file = "codes.parquet"
sha256 = "{sha}"
[dev]
source = "codes.parquet"
"""
ROW = {"usage": 42.0, "plan": "pro", "code": "c000007"}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) {five:.2f} (5 min)"


def synthetic(rows: int, codes: list[str], seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    code = rng.integers(0, len(codes), rows)
    plan = rng.choice(["basic", "plus", "pro"], rows).astype(object)
    usage = rng.uniform(0, 100, rows)
    logit = 0.02 * (usage - 50) + np.where(code % 3 == 0, 1.0, -0.5) + (plan == "pro") - (plan == "basic")
    frame = pd.DataFrame({"usage": usage, "plan": plan, "code": np.asarray(codes, dtype=object)[code],
                          "bought": np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")})
    frame.loc[rng.random(rows) < 0.02, "code"] = np.nan
    return frame


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_SERVE_PORT")}
    return {**env, "WORKBENCH_HOME": str(home), "WORKBENCH_DATASET": DATASET}


def make_versions(home: Path, n_codes: int, rows: int, base: str) -> tuple[dict[str, str], object]:
    """The home's definition and two registered versions of one fitted model ({"before": v,
    "after": v}), and the home's settings."""
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from core import catalog, tracking
    from core.config import Settings
    from core.data.columns import feature_frame
    from core.files import sha256_file
    from core.modeling import model_io, preprocess, promotion, registry

    codes = [f"c{i:06d}" for i in range(n_codes)]
    folder = catalog.user_dir(home) / DATASET
    folder.mkdir(parents=True)
    data = synthetic(rows, codes)
    source = home / "codes.parquet"
    data.to_parquet(source, index=False)
    (folder / "dataset.toml").write_text(TOML.format(name=DATASET, codes=json.dumps(codes), sha=sha256_file(source)))
    s = Settings.from_env(env_for(home))
    spec = s.dataset
    features, cats = spec.features, spec.categorical_features
    x = feature_frame(data, features, cats)
    t0 = time.perf_counter()
    model = Pipeline([*preprocess.preprocessor(spec, 0), ("model", LogisticRegression(max_iter=500))])
    model.fit(x, (data["bought"] == "yes").astype(int))
    print(f"fitted on {rows:,} rows in {time.perf_counter() - t0:.1f} s; {load()}")
    t0 = time.perf_counter()
    with mlflow.start_run(run_name="codes-logged", experiment_id=tracking.use(s)):
        info = model_io.log_model(model, features, data, rules=spec.rules, categorical=cats)
    print(f"logged in {time.perf_counter() - t0:.1f} s; {load()}")
    # both versions registered the same way, from copies of the logged folder; before: with the
    # earlier loader (no code/category_codes.py), as a model logged before this change
    old_loader = subprocess.run(["git", "show", f"{base}:core/modeling/pyfunc_model.py"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    logged = home / "logged-model"
    mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(logged))
    print(f"model.skops: {(logged / 'model.skops').stat().st_size / 1e6:.1f} MB")
    versions = {}
    for kind in ("before", "after"):
        copy = home / f"{kind}-model"
        shutil.copytree(logged, copy)
        if kind == "before":
            (copy / "code" / "category_codes.py").unlink()
            (copy / "code" / "pyfunc_model.py").write_text(old_loader)
        with mlflow.start_run(run_name=f"codes-{kind}", experiment_id=tracking.use(s)) as run:
            mlflow.log_artifacts(str(copy), artifact_path="model")
        versions[kind] = registry.register(s, f"runs:/{run.info.run_id}/model")
    promotion.promote(s, versions["after"])
    return versions, s


CHILD = """
import json, statistics, sys, time
import mlflow, numpy as np, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
t0 = time.perf_counter()
m = mlflow.pyfunc.load_model(sys.argv[2])
load_s = time.perf_counter() - t0
row = pd.DataFrame([json.loads(sys.argv[3])])
calls = int(sys.argv[4])
for _ in range(5):
    p = np.asarray(m.predict(row))
times = []
for _ in range(calls):
    t = time.perf_counter()
    m.predict(row)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
impl = m._model_impl
coders = {}  # the codes step alone on the row's `code` column: the encoder, and what scores
scorer = getattr(impl, "_scorer", impl.sklearn_model)
for label, model in (("encoder", impl.sklearn_model), ("scorer", scorer)):
    part = next(t for _, t, cols in model.named_steps["encode"].transformers_ if "code" in list(cols))
    step, names = part.named_steps["codes"], list(part.named_steps["codes"].encoder.feature_names_in_
                                                  if hasattr(part.named_steps["codes"], "encoder")
                                                  else part.named_steps["codes"].feature_names_in_)
    one = row[names]
    ts = []
    for _ in range(min(calls, 50)):
        t = time.perf_counter()
        step.transform(one)
        ts.append((time.perf_counter() - t) * 1000)
    coders[label] = (type(step).__name__, statistics.median(ts))
pipes = {"pipeline": [], "scorer": []}  # the pipeline's own predict_proba vs what scores, taking turns
for _ in range(5):
    for label, model in (("pipeline", impl.sklearn_model), ("scorer", scorer)):
        for _ in range(max(calls // 5, 1)):
            t = time.perf_counter()
            model.predict_proba(row)
            pipes[label].append((time.perf_counter() - t) * 1000)
print(json.dumps({"median": statistics.median(times), "pipes": {k: statistics.median(v) for k, v in pipes.items()}, "p99": times[min(len(times) - 1, int(0.99 * len(times)))],
                  "load_s": load_s, "proba": p.tolist(), "loader": type(impl).__module__,
                  "scorer": "a copy with CategoryCodes" if scorer is not impl.sklearn_model else "the pipeline itself",
                  "codes_step": coders}))
"""


def in_process(s: object, version: str, calls: int) -> dict:
    uri = f"models:/{s.model_name}/{version}"
    out = subprocess.run([sys.executable, "-c", CHILD, s.tracking_uri, uri, json.dumps(ROW), str(calls)],
                         cwd=tempfile.gettempdir(), capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve(home: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve", "--port", str(port)], cwd=ROOT,
                            env=env_for(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                c.close()
                return proc
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    stop(proc)
    raise SystemExit(f"the server did not start:\n{proc.stdout.read() if proc.stdout else ''}")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def single_rows(port: int, n: int) -> tuple[list[float], list[list[float]]]:
    body = json.dumps({"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times, answer = [], None
    for i in range(n + 20):
        t0 = time.perf_counter()
        c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise SystemExit(f"status {r.status}: {data[:500]!r}")
        if i >= 20:
            times.append((time.perf_counter() - t0) * 1000)
        answer = json.loads(data)["predictions"]
    c.close()
    return times, answer


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="b44b686", help="the commit whose loader is 'before'")
    ap.add_argument("--categories", type=int, default=110_000)
    ap.add_argument("--rows", type=int, default=20_000, help="training rows")
    ap.add_argument("--rounds", type=int, default=3, help="in-process rounds per version")
    ap.add_argument("--calls", type=int, default=200, help="one-row predict calls per in-process round")
    ap.add_argument("--http-rounds", type=int, default=1, help="served rounds per version")
    ap.add_argument("--requests", type=int, default=300, help="one-row requests per served round")
    ap.add_argument("--port", type=int, default=5397)
    args = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    print(f"bench/category_codes.py {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; before = loader "
          f"of {args.base}, after = head {head}; {args.categories:,} categories; {os.cpu_count()} cores; {load()}")
    home = Path(tempfile.mkdtemp(prefix="codes-bench-"))
    try:
        versions, s = make_versions(home, args.categories, args.rows, args.base)
        from core.modeling import promotion

        kinds = ("before", "after")
        inproc: dict[str, list[dict]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            for k in kinds:
                got = in_process(s, versions[k], args.calls)
                inproc[k].append(got)
                step = got["codes_step"]["scorer"]
                print(f"in-process {k} (v{versions[k]}, scoring with {got['scorer']}): predict median "
                      f"{got['median']:.3f} ms, p99 {got['p99']:.3f} ms; its codes step ({step[0]}) alone "
                      f"{step[1]:.3f} ms; predict_proba alone, the pipeline {got['pipes']['pipeline']:.3f} ms, "
                      f"what scores {got['pipes']['scorer']:.3f} ms; load_model {got['load_s']:.1f} s; {load()}")
        served: dict[str, list[float]] = {k: [] for k in kinds}
        answers: dict[str, list] = {}
        for r in range(args.http_rounds):
            for k in kinds:
                promotion.promote(s, versions[k])
                t0 = time.perf_counter()
                proc = serve(home, args.port)
                up = time.perf_counter() - t0
                try:
                    times, answers[k] = single_rows(args.port, args.requests)
                finally:
                    stop(proc)
                served[k] += times
                print(f"served {k} (v{versions[k]}): up in {up:.1f} s; p50 {pct(times, 0.5):.3f} ms, "
                      f"p99 {pct(times, 0.99):.3f} ms over {len(times)} requests; {load()}")
        same_in = max(abs(a - b) for a, b in zip(np.ravel(inproc["before"][0]["proba"]),
                                                  np.ravel(inproc["after"][0]["proba"])))
        print(f"\nmax |before - after| probability: in-process {same_in:.3g}"
              + (f", served {max(abs(a - b) for a, b in zip(np.ravel(answers['before']), np.ravel(answers['after']))):.3g}"
                 if len(answers) == 2 else ""))
        print("\n| one row, 110,000-category model | before (OrdinalEncoder) | after (lookup built once) | after / before |"
              if args.categories == 110_000 else "\n| one row | before | after | after / before |")
        print("|---|---|---|---|")
        rows = [("in-process pyfunc predict, median of rounds' medians", "median"),
                ("in-process pyfunc predict, p99 (median of rounds)", "p99")]
        for name, key in rows:
            b = statistics.median(g[key] for g in inproc["before"])
            a = statistics.median(g[key] for g in inproc["after"])
            print(f"| {name} | {b:.3f} ms | {a:.3f} ms | {a / b:.3f} |")
        if args.http_rounds:
            for name, q in (("`python -m core serve`, keep-alive http.client, p50", 0.5), ("… p99", 0.99)):
                b, a = pct(served["before"], q), pct(served["after"], q)
                print(f"| {name} | {b:.3f} ms | {a:.3f} ms | {a / b:.3f} |")
        print(f"\n{load()}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
