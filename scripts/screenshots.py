"""The README's page gallery: one screenshot of each page in headless Chromium (Debian's
/usr/bin/chromium), saved as small PNGs in docs/.

Run:  .venv/bin/python scripts/screenshots.py [--home DIR] [--out docs/screenshots] [--width 1280 --height 900]
          [--dataset NAME --prefix NAME- --batch FILE]
      .venv/bin/python scripts/screenshots.py --task multiclass|regression [--out DIR]

`--task`: the Train and Compare pages of a multiclass (Palmer penguins' species) or a regression
(ggplot2's mpg: highway miles per gallon) dataset, written with a hand-written definition by
bench/task_data.py into a temporary home, prepared and trained with a small budget; Train is shot
after a training from the page itself, Compare on each of its chart tabs and its registry.

`--segments`: the worst segments' tables alone: Compare's (the champion on the test split),
Production's (after scoring its production batch, or uploading `--batch` when the dataset sets none
apart) and Drift's (after uploading `--batch`, or the raw production file); the batch labelled.

`--serve-only`: the Serve page alone, one row answered (e.g. a multiclass or a regression
champion's home made by tests/task_homes.py).

`--home` is a workbench home with prepared data and a champion; it is used as a user would use
it (the production batch is scored, the model server is started and stopped, the raw production
file is uploaded on the Drift page). Without it, one is made in a temporary folder (`prepare`,
then a small `train`, as bench/pages.py does). Each shot is the browser's window at the given
size, scrolled to the part of the page named below; the PNGs are reduced to a 256-colour palette.

`--dataset` opens the app on that dataset of the home (its sidebar default, WORKBENCH_DATASET) and
`--prefix` starts each file's name (e.g. `churn-home.png`); `--batch` is the file uploaded on the
Drift page (default: the home's raw production file, Kobe's). The Serve page is shot twice: its
form with an answer, and (after Production has scored its batch through the model server) its
operations section. The browser's console warnings and errors are printed at the end, by page.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
# the browser, its flags, the page-idle test and the small trained home: bench/pages.py's, one place
from pages import ARGS, CHROMIUM, IDLE, free_port, make_home  # noqa: E402


def start_app(home: Path, dataset: str | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port (on `dataset` when given); (process, url) once it
    prints its address."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env.update(WORKBENCH_HOME=str(home), WORKBENCH_SERVE_PORT=str(free_port()))
    if dataset:
        env["WORKBENCH_DATASET"] = dataset
    log = open(home / "screenshots-streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the app did not start (see screenshots-streamlit.log in the home)")


def small_png(path: Path) -> int:
    """Reduce the PNG at `path` to a 256-colour palette, in place; its size in bytes."""
    from PIL import Image

    with Image.open(path) as im:
        reduced = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    reduced.save(path, optimize=True)
    return path.stat().st_size


class Shooter:
    def __init__(self, page, url: str, out: Path, prefix: str = "") -> None:
        self.page, self.url, self.out, self.prefix = page, url, out, prefix
        self.where = "Home"
        self.console: list[str] = []  # the browser's warnings and errors, with the page they came from
        page.on("console", lambda m: self.console.append(f"{self.where}: {m.type}: {m.text}")
                if m.type in ("warning", "error") else None)
        page.on("pageerror", lambda e: self.console.append(f"{self.where}: pageerror: {e}"))

    def settle(self, timeout_ms: int = 180_000) -> None:
        """Wait until the script run is done: no 'running' indicator twice, a second apart."""
        for _ in range(2):
            self.page.wait_for_timeout(1000)
            self.page.wait_for_function(IDLE, timeout=timeout_ms)
        self.page.wait_for_timeout(800)  # charts finish drawing

    def open(self, name: str = "", title: str | None = None) -> None:
        """Open Home (by URL) or a page through the sidebar; wait for its title (default: `name`)."""
        self.where = name or "Home"
        if name:
            self.page.locator("[data-testid='stSidebarNav'] a", has_text=name).first.click()
        else:
            self.page.goto(self.url)
        self.page.locator("[data-testid='stApp'] h1", has_text=title or name).first.wait_for(timeout=90_000)
        self.settle()

    def top(self) -> None:
        """Scroll back to the page's title (a click further down scrolls the page)."""
        self.page.locator("[data-testid='stApp'] h1").first.evaluate("e => e.scrollIntoView({block: 'end'})")
        self.page.wait_for_timeout(600)

    def at(self, text: str) -> None:
        """Scroll the page so that the element with `text` is at the top of the window."""
        self.page.get_by_text(text, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(600)

    def at_chart(self, index: int = 0) -> None:
        """Scroll the page so that its `index`-th Plotly chart is at the top of the window."""
        self.page.locator("[data-testid='stPlotlyChart']").nth(index).evaluate(
            "e => e.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(800)

    def shot(self, name: str) -> None:
        path = self.out / f"{self.prefix}{name}.png"
        self.page.mouse.move(1, 1)  # no hover: a chart's toolbar would cover its title
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(path))
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {small_png(path) / 1000:.0f} kB")


def serve_and_answer(page, s: Shooter) -> float:
    """On the Serve page: start the model server if it is down, send the form's row, wait for the
    answer (of any task kind: its last caption names the model); when the row was sent."""
    if page.get_by_role("button", name="Start server").count():
        page.get_by_role("button", name="Start server").click()
    page.get_by_role("button", name="Stop server").wait_for(timeout=180_000)
    s.settle()
    page.get_by_role("button", name="Predict").click()
    sent = time.monotonic()
    page.get_by_text(re.compile(r"^Model v\S+ at ")).first.wait_for(timeout=60_000)
    s.settle()
    s.top()
    return sent


TASK_DATASETS = {"multiclass": "penguins", "regression": "mpg"}
TASK_TABS = {"multiclass": ["ROC per class", "Confusion matrices", "Precision and recall per class",
                            "Feature importance", "Learning curves"],
             "regression": ["Predicted vs actual", "Residuals", "Error distribution", "Interval coverage",
                            "Feature importance", "Learning curves"]}


def task_home(task: str) -> Path:
    """A temporary home whose active dataset is the task's (see the module docstring), prepared,
    with a small training's champion."""
    import tempfile

    from task_data import write

    home = Path(tempfile.mkdtemp(prefix=f"screenshots-{task}-"))
    name = TASK_DATASETS[task]
    write(home, name)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    for cmd in (["dataset", "use", name], ["prepare", "--json"],
                ["train", "--models", "lightgbm", "--n-iter", "2", "--folds", "2", "--json"]):
        subprocess.run([sys.executable, "-m", "core", *cmd], cwd=ROOT, env=env, check=True, capture_output=True)
    return home


def task_shots(task: str, out: Path, width: int, height: int) -> None:
    """Train (after a training from the page) and Compare (each chart tab, the registry) of a task."""
    from playwright.sync_api import sync_playwright

    home = task_home(task)
    out.mkdir(parents=True, exist_ok=True)
    proc, url = start_app(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": width, "height": height})
            s = Shooter(page, url, out.resolve())
            s.open(title="Kobe Workbench")
            s.open("Train")
            s.shot(f"{task}-train-form")
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text("Next: overlay the candidates").wait_for(timeout=600_000)
            s.settle()
            s.top()
            s.shot(f"{task}-train")
            page.locator("[data-testid='stDataFrame']").last.evaluate("e => e.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(600)
            s.shot(f"{task}-train-table")
            s.open("Compare")
            page.get_by_text("Overlay candidates").wait_for(timeout=60_000)
            s.settle()
            s.shot(f"{task}-compare")
            for i, tab in enumerate(TASK_TABS[task]):
                page.get_by_role("tab", name=tab).click()
                page.wait_for_timeout(800)
                page.get_by_role("tab", name=tab).evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(600)
                s.shot(f"{task}-compare-{i + 1}-{tab.lower().replace(' ', '-')}")
            s.at("Registry")
            s.shot(f"{task}-compare-registry")
            browser.close()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def segment_shots(page, s: "Shooter", batch: Path) -> None:
    """The segment tables of Compare, Production and Drift (see the module docstring)."""
    heading = re.compile(r"^Where (a version|v\d+) does worse")
    s.open(title="Kobe Workbench")
    s.open("Compare")
    page.get_by_text(heading).first.wait_for(timeout=180_000)
    s.settle()
    page.get_by_text(heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)
    s.shot("compare-segments")
    s.open("Production")
    if not page.get_by_role("button", name="Score production").count():  # no production split: upload
        page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(str(batch))
        page.get_by_role("button", name="Score upload").wait_for(timeout=60_000)
        s.settle()
    page.get_by_role("button", name=re.compile("^Score (production|upload)$")).first.click()
    page.get_by_text(heading).first.wait_for(timeout=300_000)
    s.settle()
    page.get_by_text(heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)
    s.shot("production-segments")
    s.open("Drift")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(batch))
    page.get_by_text(heading).first.wait_for(timeout=300_000)
    s.settle()
    page.get_by_text(heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(600)
    s.shot("drift-segments")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--dataset", default=None, help="the home's dataset to open the app on (default: its active one)")
    ap.add_argument("--prefix", default="", help="the start of each PNG's name, e.g. kobe-")
    ap.add_argument("--batch", type=Path, default=None, help="the file to upload on the Drift page")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--serve-only", action="store_true", help="only the Serve page with one row answered")
    ap.add_argument("--segments", action="store_true",
                    help="only the worst segments' tables of Compare, Production and Drift (labelled batches)")
    ap.add_argument("--task", choices=list(TASK_DATASETS), default=None)
    args = ap.parse_args()
    if args.task:
        task_shots(args.task, args.out, args.width, args.height)
        return
    from playwright.sync_api import sync_playwright

    home = args.home or make_home("screenshots-")
    args.out.mkdir(parents=True, exist_ok=True)
    proc, url = start_app(home, args.dataset)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            s = Shooter(page, url, args.out.resolve(), args.prefix)
            if args.serve_only:
                page.goto(url + "/Serve")
                page.locator("[data-testid='stApp'] h1", has_text="Serve").first.wait_for(timeout=90_000)
                s.settle()
                serve_and_answer(page, s)
                s.shot("serve")
                page.get_by_role("button", name="Stop server").click()  # the server outlives the app otherwise
                page.get_by_role("button", name="Start server").wait_for(timeout=60_000)
                browser.close()
                return
            if args.segments:
                segment_shots(page, s, args.batch or next((home / "data").glob("**/01_raw/*prod*.parquet")))
                browser.close()
                return
            s.open(title="Kobe Workbench")
            page.get_by_text("Pages", exact=True).wait_for(timeout=90_000)  # the end of the page
            s.settle()
            s.shot("home")
            s.open("Data")
            s.shot("data")
            s.open("Train")
            s.shot("train")
            s.open("Compare")
            page.get_by_text("Overlay candidates").wait_for(timeout=60_000)
            s.settle()
            s.shot("compare")
            s.at("Registry")
            s.shot("compare-registry")
            s.open("Serve")
            first_request = serve_and_answer(page, s)
            s.shot("serve")
            s.open("Production")
            page.get_by_role("button", name="Score production").click()
            page.get_by_text("Is the model adherent to the production data?", exact=True).wait_for(timeout=180_000)
            s.settle()
            s.at("Is the model adherent to the production data?")
            s.shot("production")
            s.open("Drift")
            raw_prod = args.batch or next((home / "data" / "01_raw").glob("*prod*.parquet"))
            page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(raw_prod))
            page.get_by_text("Drifted features", exact=True).wait_for(timeout=180_000)
            s.settle()
            s.shot("drift")
            s.at_chart(0)  # the drift per feature, worst first
            s.shot("drift-features")
            s.open("Serve")
            # a second single-row request a minute after the first: the latency chart has two points
            page.wait_for_timeout(max(0.0, 62.0 - (time.monotonic() - first_request)) * 1000)
            page.get_by_role("button", name="Predict").click()
            s.settle()
            s.at("Operations")
            s.shot("serve-operations")
            page.get_by_role("button", name="Stop server").click()  # the server outlives the app otherwise
            page.get_by_role("button", name="Start server").wait_for(timeout=60_000)
            browser.close()
        print(f"browser console: {len(s.console)} warning(s) and error(s)")
        for line in s.console:
            print("  " + line)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
