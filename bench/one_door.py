"""Speed of the one door to the model (issue 29): this checkout against an earlier commit, in one run.

The model version is now read once at the edge (`core.modeling.registry`) and passed down; this
must not slow what users run. Measured the way a user meets it, for both checkouts on copies of
one home (prepared Kobe data, a logistic-regression champion logged as training logs it):

- `predict`: the whole `python -m core predict --input ... --json` process against a running
  model server (median of `--reps` runs);
- `drift`: the whole `python -m core drift --batch FILE --json` process on a 1,000,000-row
  parquet batch drawn from the production split (median of `--drift-reps` runs);
- the served single row: the checkout's own `python -m core serve`, one row per request over a
  kept-alive `http.client` connection (p50 and p99 of `--requests` requests after a warm-up).

The two checkouts take turns (base, head, base, head, ...) so that a change in the machine's load
touches both; the load average is printed with every figure.

    KOBE_DATA_DIR=/work/shared/data/kobe .venv/bin/python bench/one_door.py --base 4605020
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

ROOT = Path(__file__).resolve().parent.parent
ROW = {"lat": 33.97, "lon": -118.27, "minutes_remaining": 5, "period": 3, "playoffs": 0, "shot_distance": 11}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (1 min) {five:.2f} (5 min)"


def checkout(base: str, where: Path) -> Path:
    """A detached worktree of `base` (sharing this checkout's virtual environment)."""
    subprocess.run(["git", "worktree", "add", "--detach", "-f", str(where), base], cwd=ROOT, check=True,
                   capture_output=True)
    (where / ".venv").symlink_to(ROOT / ".venv")
    return where


def make_home() -> tuple[Path, Path]:
    """A home with prepared Kobe data and a champion, built by this checkout's bench/_home.py."""
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_HOME"}
    code = ("import sys; sys.path.insert(0, 'bench'); import _home; s = _home.bench_home(); "
            "print(s.home); print(s.prod_filtered_path)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    # kept where it was built: its registry names its artifacts by absolute path (the copies read them)
    home, prod = out.stdout.strip().splitlines()[-2:]
    return Path(home), Path(prod)


def big_batch(prod_path: Path, path: Path, rows: int) -> None:
    import pandas as pd

    prod = pd.read_parquet(prod_path)
    prod.sample(rows, replace=True, random_state=0).reset_index(drop=True).to_parquet(path)


def run(code_dir: Path, home: Path, *words: str, timeout: float = 600) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    t0 = time.perf_counter()
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "core", *words], cwd=code_dir, env=env,
                         capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - t0, out


def serve(code_dir: Path, home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    proc = subprocess.Popen([str(ROOT / ".venv/bin/python"), "-m", "core", "serve", "--port", str(port)],
                            cwd=code_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                c.close()
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server of {code_dir} did not start:\n{proc.stdout.read() if proc.stdout else ''}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def single_rows(port: int, n: int) -> list[float]:
    body = json.dumps({"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for i in range(n + 200):
        t0 = time.perf_counter()
        c.request("POST", "/invocations", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"status {r.status}")
        if i >= 200:
            times.append((time.perf_counter() - t0) * 1000)
    c.close()
    return times


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="4605020", help="the earlier commit to compare with")
    ap.add_argument("--reps", type=int, default=7, help="predict runs per checkout")
    ap.add_argument("--drift-reps", type=int, default=3, help="drift runs per checkout")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the drift batch")
    ap.add_argument("--requests", type=int, default=2000, help="single-row requests per checkout")
    args = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    print(f"bench/one_door.py {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; base {args.base}, "
          f"head {head}; {os.cpu_count()} cores; {load()}")
    tmp = Path(tempfile.mkdtemp(prefix="one-door-"))
    try:
        base_dir = checkout(args.base, tmp / "base")
        home, prod_path = make_home()
        homes = {"base": tmp / "home-base", "head": tmp / "home-head"}
        for h in homes.values():
            shutil.copytree(home, h, symlinks=True)
        dirs = {"base": base_dir, "head": ROOT}
        batch = tmp / "batch.parquet"
        big_batch(prod_path, batch, args.rows)
        results: dict[str, dict[str, list[float]]] = {k: {"predict": [], "drift": [], "rows": []} for k in dirs}
        ports = {"base": 5391, "head": 5392}
        servers = {k: serve(dirs[k], homes[k], ports[k]) for k in dirs}
        try:
            print(f"servers up; {load()}")
            for _ in range(args.reps):
                for k in dirs:
                    s, out = run(dirs[k], homes[k], "predict", "--input", json.dumps(ROW), "--url",
                                 f"http://127.0.0.1:{ports[k]}", "--json")
                    if out.returncode != 0:
                        raise SystemExit(f"{k} predict failed: {out.stderr}")
                    results[k]["predict"].append(s)
            print(f"predict done; {load()}")
            for k in dirs:
                results[k]["rows"] = single_rows(ports[k], args.requests)
            print(f"single rows done; {load()}")
        finally:
            for p in servers.values():
                stop(p)
        for k in dirs:  # a first check builds its caches (reference, model copy): not timed
            run(dirs[k], homes[k], "drift", "--batch", str(batch), "--json", "--no-domain")
        for _ in range(args.drift_reps):
            for k in dirs:
                s, out = run(dirs[k], homes[k], "drift", "--batch", str(batch), "--json", "--no-domain")
                if out.returncode != 0:
                    raise SystemExit(f"{k} drift failed: {out.stderr[-2000:]}")
                results[k]["drift"].append(s)
        print(f"drift done; {load()}")
        print()
        print("| measure | base | head | head / base |")
        print("|---|---|---|---|")
        for name, unit, fn in (("predict, whole CLI process (median)", "s", lambda v: statistics.median(v)),
                               (f"drift --batch {args.rows:,} rows, whole CLI (median)", "s",
                                lambda v: statistics.median(v)),
                               ("served single row p50 (keep-alive)", "ms", lambda v: pct(v, 0.5)),
                               ("served single row p99 (keep-alive)", "ms", lambda v: pct(v, 0.99))):
            key = "predict" if name.startswith("predict") else "drift" if name.startswith("drift") else "rows"
            b, h = fn(results["base"][key]), fn(results["head"][key])
            print(f"| {name} | {b:.3f} {unit} | {h:.3f} {unit} | {h / b:.2f} |")
        print(f"\n{load()}")
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "base")], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if "home" in locals():
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
