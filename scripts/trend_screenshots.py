"""Screenshots of the Drift page's trends (issue 32): a Kobe home whose inference log holds six
hours of traffic, the last two shifted (production's 3-point shots), and a history of four checks;
the trend over the log in hourly chunks, the details of the first drifted chunk, and the trend
over the history, shot in headless Chromium (`scripts/screenshots.py`'s browser and helpers).

Run:  .venv/bin/python scripts/trend_screenshots.py [--home DIR] [--out docs/screenshots]

Without `--home`, a temporary home is made with `tests/conftest.py`'s logistic-regression champion
(`KOBE_DATA_DIR` points at the raw files, else they are downloaded). The log's rows are written
with chosen times through the inference log's own writer (`inference_log.write_captured`, the
model server's capture), with the champion's real answers.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "bench"))
from pages import ARGS, CHROMIUM  # noqa: E402
from screenshots import Shooter, start_app  # noqa: E402

HOUR_ROWS = 400


def trend_home(home: Path) -> Path:
    """Prepare Kobe in `home`, register a champion, log six hours of traffic (the last two shifted)
    and check four batches (two calm, two shifted) as the Drift page would."""
    import pandas as pd

    from core.data import preparation
    from core.data.batches import from_frame
    from core.modeling import registry
    from core.monitoring import check
    from core.serving import answers, inference_log
    from tests.conftest import make_champion_home

    s = make_champion_home(home)
    champ = registry.champion(s)
    test, prod = preparation.load_split(s, "test"), preparation.load_split(s, "prod")
    hours = [test.sample(HOUR_ROWS, random_state=h) for h in range(4)]
    hours += [prod.sample(HOUR_ROWS, random_state=10 + h) for h in range(2)]
    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    names = inference_log.columns(s.dataset)
    inference_log.ensure(s)
    con = inference_log.open_for_capture(s.inference_log_path)
    try:
        for h, part in enumerate(hours):
            x = part.loc[:, list(s.features)]
            proba = _proba(champ, s, x)
            rows = answers.for_task("binary").log_rows(answers.matrix(proba), champ.decision_threshold)
            calls = []
            for i, (values, out) in enumerate(zip(x.to_numpy().tolist(), rows)):
                stamp = (start + timedelta(hours=h, seconds=i * 3600 / HOUR_ROWS)).isoformat(timespec="microseconds")
                calls.append(((stamp, None, champ.version, 200, "ok", 1, 2.0, "http", 0, "application/json"),
                              [(stamp, *values, *out, champ.version, 2.0, "http")]))
            inference_log.write_captured(con, names, calls)
    finally:
        con.close()
    for i, part in enumerate([hours[0], hours[1], hours[4], pd.concat([hours[2], hours[5]])]):
        batch = from_frame(part.drop(columns=[s.target]), champ.scoped(s), f"batch-{i + 1}.parquet")
        check.check(batch, s, model=champ, source="upload", domain=False)
    return home


def _proba(champ, s, x):
    """The champion's positive-class probability on `x` (as a drift check scores a batch)."""
    from core.monitoring import outputs
    from core.monitoring.champion import champion_model

    _, fitted = champion_model(champ.scoped(s), champ)
    return outputs.model_outputs(fitted, x, s.features, s.dataset.categorical_features, champ)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    home = args.home or trend_home(Path(tempfile.mkdtemp(prefix="screenshots-trends-")))
    args.out.mkdir(parents=True, exist_ok=True)
    proc, url = start_app(home)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            s = Shooter(page, url, args.out.resolve(), "kobe-")
            s.open(title="Kobe Workbench")
            s.open("Drift")
            s.at("Trends")
            page.locator("[data-testid='stSelectbox']").filter(has_text="Chunks by").click()
            page.get_by_role("option", name="request time").click()
            s.settle()
            page.get_by_role("button", name="Check in chunks").click()
            page.locator("[data-testid='stPlotlyChart']").last.wait_for(timeout=180_000)
            s.settle()
            s.at("Trends")
            s.shot("drift-trends")
            page.locator("[data-testid='stSelectbox']").filter(has_text="Chunk").last.evaluate(
                "e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(800)
            s.shot("drift-trend-chunk")
            page.get_by_text("History of checks").click()
            page.get_by_text(re.compile(r"^Drift per check")).first.wait_for(timeout=180_000)
            s.settle()
            s.at("Trends")
            s.shot("drift-trends-history")
            browser.close()
        print(f"browser console: {len(s.console)} warning(s) and error(s)")
        for line in s.console:
            print("  " + line)
        print(f"home: {home}")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
