"""`serve` start to the first /ping answer: the workbench's `python -m core serve` against stock
`mlflow models serve` of the same registered version, both with 2 workers, alternated, from the
command's launch (polled from outside every 20 ms). Prints each run with the machine's load and
the medians; a run whose 1-minute load is above 1.5 is marked "loaded".

    WORKBENCH_HOME=... .venv/bin/python bench/serve_start.py [RUNS]

(a home with a champion; without WORKBENCH_HOME one is made in a temporary folder).
"""
from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._home import bench_home  # noqa: E402
from core.config import PROJECT_ROOT  # noqa: E402
from core.modeling import registry  # noqa: E402
from core.serving import server  # noqa: E402


def time_to_ping(command: list[str], env: dict[str, str], port: int, limit_s: float = 120.0) -> float:
    """Seconds from launching `command` to the first 200 answer of /ping on `port`; the command's
    process group is stopped afterwards."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        while time.perf_counter() - t0 < limit_s:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited with {proc.returncode}")
            time.sleep(0.02)
        raise RuntimeError(f"{command[:4]} did not answer within {limit_s:g} s")
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=20)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        time.sleep(1.0)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    settings = bench_home()
    version = registry.champion(settings).version
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    stock_env = server._environment(settings)
    figures: dict[str, list[float]] = {"workbench": [], "stock": []}
    print(f"home {settings.home}, champion v{version}, {os.cpu_count()} cores")
    for i in range(runs):
        for name in ("workbench", "stock"):
            port = server.free_port()
            load = os.getloadavg()
            if name == "workbench":
                command = [sys.executable, "-m", "core", "serve", "--port", str(port), "--workers", "2"]
                seconds = time_to_ping(command, env, port)
            else:
                command = server._command(settings, f"models:/{settings.model_name}/{version}", port, 2)
                seconds = time_to_ping(command, stock_env, port)
            figures[name].append(seconds)
            flag = " loaded" if load[0] > 1.5 else ""
            print(f"run {i + 1} {name:9s} {seconds:6.2f} s   load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}{flag}",
                  flush=True)
    for name, values in figures.items():
        print(f"median {name:9s} {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f}, "
              f"{len(values)} runs)")
    print(f"ratio workbench/stock {statistics.median(figures['workbench']) / statistics.median(figures['stock']):.2f}; "
          f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
