"""The app's speed as an analyst meets it, timed in headless Chromium (Debian's /usr/bin/chromium).

Run:  .venv/bin/python bench/pages.py [--runs 5] [--home DIR]

`--home` is a workbench home with prepared data and a champion; without it, one is made in a
temporary folder (`prepare`, then a small `train`). Prints, each a median over `--runs`:
- Home first paint: from the moment `streamlit run app.py` prints its address to the moment the
  Home page's title is visible (a fresh server each run), against the same for a one-line
  Streamlit page (`st.title`) started the same way in the same run: the floor Streamlit itself sets;
- Compare: opening the page, then each tab click until its chart is drawn;
- the Compare page's threshold slider: one key press until the rerun is done;
with the machine's load average before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
IDLE = "!document.querySelector('[data-testid=\"stStatusWidget\"]')"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_home(prefix: str = "bench-pages-") -> Path:
    """A temporary home with the data prepared and a small training's champion (lr, dt, lightgbm)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    for cmd in (["prepare"], ["train", "--models", "lr,dt,lightgbm", "--n-iter", "2", "--folds", "2"]):
        subprocess.run([sys.executable, "-m", "core", *cmd, "--json"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
    return home


def start(script: Path, home: Path) -> tuple[subprocess.Popen, str, float]:
    """`streamlit run script`; (process, url, the time its address was printed)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(WORKBENCH_HOME=str(home), WORKBENCH_SERVE_PORT=str(free_port()))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.address",
                             "127.0.0.1", "--server.port", str(port), "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if f":{port}" in line:
            printed = time.perf_counter()
            # keep reading its output: a full pipe would block the server at its next log line
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, f"http://127.0.0.1:{port}", printed
    raise RuntimeError(f"{script} did not start")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    proc.wait(timeout=20)


def first_paint(browser, script: Path, home: Path, tiles: int = 0) -> tuple[float, float]:
    """(seconds to the page title, seconds to `tiles` status tiles) after the address is printed."""
    proc, url, printed = start(script, home)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url)
        page.wait_for_selector("[data-testid='stApp'] h1", timeout=60_000)
        title = time.perf_counter() - printed
        if tiles:
            page.wait_for_function(f"document.querySelectorAll('[data-testid=\"stMetric\"]').length >= {tiles}",
                                   timeout=60_000)
        took = time.perf_counter() - printed
        page.close()
        return title, took
    finally:
        stop(proc)


def compare_timings(browser, home: Path) -> dict[str, float]:
    proc, url, _ = start(ROOT / "app.py", home)
    out: dict[str, float] = {}
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.wait_for_selector("[data-testid='stApp'] h1", timeout=60_000)
        page.wait_for_function(IDLE, timeout=60_000)
        t0 = time.perf_counter()
        page.locator("[data-testid='stSidebarNav'] a", has_text="Compare").first.click()
        page.get_by_text("Overlay candidates").wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        page.wait_for_function(IDLE, timeout=60_000)
        out["open Compare"] = time.perf_counter() - t0
        for tab in ("Precision-recall", "Calibration", "Confusion matrices", "Feature importance",
                    "Learning curves", "ROC"):
            t0 = time.perf_counter()
            page.get_by_role("tab", name=tab).click()
            page.get_by_role("tabpanel").locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            page.wait_for_function(IDLE, timeout=60_000)
            out[f"tab {tab}"] = time.perf_counter() - t0
        page.get_by_role("tab", name="Confusion matrices").click()
        slider = page.locator("[data-testid='stSlider'] input[type='range']").first
        slider.wait_for(state="attached", timeout=60_000)
        slider.focus()
        t0 = time.perf_counter()
        slider.press("ArrowRight")
        page.wait_for_timeout(50)  # the rerun starts after the key is released
        page.wait_for_function(IDLE, timeout=60_000)
        out["threshold slider move"] = time.perf_counter() - t0
        page.close()
    finally:
        stop(proc)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average before: {os.getloadavg()}")
    home = args.home or make_home()
    floor_script = Path(tempfile.mkdtemp()) / "floor.py"
    floor_script.write_text("import streamlit as st\nst.title('Floor')\n")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        home_paint, home_tiles, floor_paint, runs = [], [], [], []
        for _ in range(args.runs):  # alternated, so that load changes touch both alike
            floor_paint.append(first_paint(browser, floor_script, home)[0])
            title, tiles = first_paint(browser, ROOT / "app.py", home, tiles=4)
            home_paint.append(title)
            home_tiles.append(tiles)
            runs.append(compare_timings(browser, home))
        browser.close()
    med_home, med_floor = statistics.median(home_paint), statistics.median(floor_paint)
    print(f"Home first paint after the address is printed: median {med_home:.2f} s "
          f"(runs {', '.join(f'{v:.2f}' for v in home_paint)})")
    print(f"Home's four status tiles shown: median {statistics.median(home_tiles):.2f} s "
          f"(runs {', '.join(f'{v:.2f}' for v in home_tiles)})")
    print(f"  one-line Streamlit page, same way: median {med_floor:.2f} s; ratio {med_home / med_floor:.2f}")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"{key}: median {statistics.median(values):.2f} s (runs {', '.join(f'{v:.2f}' for v in values)})")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
