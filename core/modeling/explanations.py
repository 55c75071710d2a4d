"""Why a model answers what it does: per-row contributions of each RAW feature (issue 31).

What computes them, and why:

- a linear estimator (logistic regression, LDA, ridge, lasso, ...): the exact coefficients,
  `coef * (z - mean z)` per encoded column, the mean over a background sample of training rows:
  these ARE the (interventional) Shapley values of a linear model, in closed form (what
  `shap.LinearExplainer` computes; hand-written here in three numpy lines because shap's
  explainer object costs milliseconds a call on a single served row, the product microseconds);
- LightGBM: LightGBM's own exact TreeSHAP (`Booster.predict(pred_contrib=True)`), on one
  thread (shap's TreeExplainer asks the same of LightGBM but with every core: in a served
  worker forked from a master that already scored, LightGBM's OpenMP pool then hangs);
- another tree model (decision tree, random forest, extra trees, gradient boosting):
  `shap.TreeExplainer` (exact TreeSHAP, path-dependent: no background needed);
- anything else (k nearest neighbours, naive Bayes, QDA, MLP, AdaBoost): permutation sampling
  of the raw features' Shapley values over the background sample (`permutation_values`, what
  shap's PermutationExplainer does, by hand: see there why), model-agnostic and additive by
  construction (each permutation's steps telescope from the background's mean answer to the
  row's answer).

The estimator is explained on the matrix it sees (after the pipeline's preprocessing,
`core/modeling/preprocess.py`); the columns one raw feature became (one-hot columns, a
multiclass target encoding's k columns) are summed back to that feature.

The scale, stated with every explanation (`Explanation.scale`), is the estimator's natural
output: `log_odds` (binary: the positive class's log-odds: linear models, gradient boosting,
LightGBM), `probability` (binary: the positive class's probability: a decision tree, forests,
the permutation fallback), `logit` (multiclass, per class: the scores whose softmax is the
probabilities), `probability` per class (multiclass trees / fallback), `value` (regression).
A calibrated model (`CalibratedClassifierCV(ensemble=False)`, `core/modeling/fitting.py`):
sigmoid calibration of a binary model is linear on the log-odds scale, so when the calibrator
reads the score explained (a linear model's or gradient boosting's decision function, a tree's
probability) the contributions are mapped through it exactly and the scale is the CALIBRATED
probability's `log_odds`; otherwise (isotonic calibration, multiclass calibration, LightGBM's
probability calibrated) the explanation is of the model before calibration and its scale says
so (`log_odds_before_calibration`, ...): the calibrated probability is a monotone map of it.
On every scale the contributions add up: base value + their sum = the output on that scale.

Like `pyfunc_model.py`, this file is copied into every model logged (`code/explanations.py`,
read by path by the served model) and imports nothing from the workbench.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

BACKGROUND_ROWS = 100  # training rows the base value and the fallback explainer average over
BEFORE = "_before_calibration"
FALLBACK_ROWS = 50  # background rows of the permutation explainer (each row costs 2 x columns + 1 passes over them)


@dataclass(frozen=True)
class Explanation:
    """Contributions of `features` for some rows: `contributions` n x d (binary, regression) or
    n x k x d (multiclass: one slice per class of `classes`); `base_value` a number or k numbers."""

    features: tuple[str, ...]
    scale: str
    base_value: np.ndarray
    contributions: np.ndarray
    classes: tuple[str, ...] | None = None

    @property
    def output(self) -> np.ndarray:
        """The model's output on `scale`: base value + the contributions' sum (n or n x k)."""
        return self.base_value + self.contributions.sum(axis=-1)

    def row(self, i: int) -> dict[str, Any]:
        """Row `i` as JSON: {"base_value", "contributions": {feature: value}, "scale", "output"}
        (multiclass: base value, contributions and output per class name)."""
        c, out = self.contributions[i], self.output[i]
        if self.classes is None:
            return {"base_value": float(self.base_value), "scale": self.scale, "output": float(out),
                    "contributions": {f: float(v) for f, v in zip(self.features, c)}}
        return {"base_value": {k: float(b) for k, b in zip(self.classes, self.base_value)},
                "scale": self.scale, "output": {k: float(o) for k, o in zip(self.classes, out)},
                "contributions": {k: {f: float(v) for f, v in zip(self.features, ck)}
                                  for k, ck in zip(self.classes, c)}}

    def rows(self) -> list[dict[str, Any]]:
        return [self.row(i) for i in range(self.contributions.shape[0])]


# --------------------------------------------------------------------------- the model's parts
def _parts(model: Any) -> tuple[Any, list[Any], Any]:
    """(the calibrated wrapper's single calibrated classifier or None, the preprocessing steps,
    the final estimator) of a workbench model: a Pipeline, maybe inside CalibratedClassifierCV."""
    calibrated = None
    if hasattr(model, "calibrated_classifiers_"):
        calibrated = model.calibrated_classifiers_[0]
        model = calibrated.estimator
    if hasattr(model, "steps"):
        return calibrated, [s for _, s in model.steps[:-1] if s is not None and s != "passthrough"], model.steps[-1][1]
    return calibrated, [], model


def transform(steps: list[Any], x: Any) -> np.ndarray:
    """The matrix the estimator sees for the raw rows `x`."""
    z = x
    for step in steps:
        z = step.transform(z)
    return np.asarray(z, dtype=np.float64)


_TOKEN = re.compile(r"^x(\d+)(?:_|$)")


def column_features(steps: list[Any], features: list[str]) -> np.ndarray:
    """For each column of the estimator's matrix, the index of the raw feature it came from."""
    encode = next((s for s in steps if hasattr(s, "output_indices_")), None)
    if encode is None:  # numbers only: imputer and scaler keep one column per feature
        return np.arange(len(features))
    owner = np.full(max(sl.stop for sl in encode.output_indices_.values()), -1, dtype=np.int64)
    for name, trans, cols in encode.transformers_:
        sl = encode.output_indices_.get(name)
        if sl is None or sl.stop == sl.start or isinstance(trans, str):
            continue
        index = [features.index(c) for c in cols]
        width = sl.stop - sl.start
        if width == len(index):
            owner[sl] = index
            continue
        # an encoder's columns (one-hot, multiclass target encoding) are named "<input>_<...>":
        # asked with the tokens x0, x1, ... (the encoder was fitted on the coder's array, not on
        # named columns), each output name says which input it came from
        inner = [s for _, s in trans.steps] if hasattr(trans, "steps") else [trans]
        encoder = next(s for s in inner if hasattr(s, "get_feature_names_out") and hasattr(s, "categories_")
                       and not hasattr(s, "encoded_missing_value"))
        names = encoder.get_feature_names_out([f"x{i}" for i in range(len(index))])
        owner[sl] = [index[int(_TOKEN.match(n).group(1))] for n in names]
    return owner


def _group(values: np.ndarray, owner: np.ndarray, d: int) -> np.ndarray:
    """Column contributions (... x columns) summed per raw feature (... x d)."""
    out = np.zeros(values.shape[:-1] + (d,), dtype=np.float64)
    for j in range(d):
        out[..., j] = values[..., owner == j].sum(axis=-1)
    return out


# --------------------------------------------------------------------------- explainers
def _is_linear(est: Any) -> bool:
    return hasattr(est, "coef_") and hasattr(est, "intercept_") and not hasattr(est, "tree_")


def _tree_explainer(est: Any) -> Any:
    try:
        import shap
        return shap.TreeExplainer(est)
    except Exception:  # not a tree model shap knows (e.g. AdaBoost): the fallback explains it
        return None


class Explainer:
    """Explains a fitted workbench model (`explain`); built once per model (the served model
    builds one at load), with `background` the estimator's matrix of some training rows
    (`background_matrix`)."""

    def __init__(self, model: Any, background: np.ndarray, task: str, features: list[str],
                 classes: list[str] | None = None) -> None:
        self.task, self.features = task, list(features)
        self.classes = tuple(str(c) for c in classes) if task == "multiclass" and classes is not None else None
        self.calibrated, self.steps, self.est = _parts(model)
        self.owner = column_features(self.steps, self.features)
        self.background = np.asarray(background, dtype=np.float64)
        self.kind, self.tree = "fallback", None
        if _is_linear(self.est):
            self.kind = "linear"
            self.coef = np.atleast_2d(np.asarray(self.est.coef_, dtype=np.float64))
            self.intercept = np.atleast_1d(np.asarray(self.est.intercept_, dtype=np.float64))
            self.mean = self.background.mean(axis=0)
        elif hasattr(self.est, "booster_"):  # LightGBM: its own TreeSHAP
            self.kind = "lightgbm"
        else:
            self.tree = _tree_explainer(self.est)
            if self.tree is not None:
                self.kind = "tree"
        if self.kind == "fallback":
            self.fallback = self.est.predict if task == "regression" else self.est.predict_proba
        self.base_scale = self._base_scale()
        self.sigmoid = self._sigmoid()
        if self.sigmoid is not None:  # mapped through the calibration: the calibrated log-odds
            self.scale = "log_odds"
        else:
            self.scale = self.base_scale if self.calibrated is None else self.base_scale + BEFORE

    def _base_scale(self) -> str:
        if self.task == "regression":
            return "value"
        if self.kind == "fallback":
            return "probability"
        if self.kind == "tree" and self.tree.model.tree_output == "probability":
            return "probability"
        return "log_odds" if self.task == "binary" else "logit"

    def _sigmoid(self) -> tuple[float, float] | None:
        """(a, b) when the binary model's sigmoid calibration reads the explained score: the
        calibrated log-odds are then -(a * score + b) (scikit-learn's `_SigmoidCalibration`)."""
        if self.calibrated is None or self.task != "binary":
            return None
        cal = self.calibrated.calibrators[0]
        if not hasattr(cal, "a_"):  # isotonic
            return None
        reads = "log_odds" if hasattr(self.calibrated.estimator, "decision_function") else "probability"
        return (float(cal.a_), float(cal.b_)) if reads == self.base_scale else None

    def _contributions(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base value, contributions per raw feature) on the base scale: n x d, or n x k x d."""
        if self.kind == "linear":
            contrib = (z - self.mean)[:, None, :] * self.coef[None, :, :]
            base = self.coef @ self.mean + self.intercept
        elif self.kind == "lightgbm":  # n x (columns + 1) per output, the last the expected value
            raw = np.asarray(self.est.booster_.predict(z, pred_contrib=True, num_threads=1), dtype=np.float64)
            per = raw.reshape(z.shape[0], -1, z.shape[1] + 1)
            contrib, base = per[:, :, :-1], per[0, :, -1]
        elif self.kind == "tree":
            values = np.asarray(self.tree.shap_values(z, check_additivity=False), dtype=np.float64)
            base = np.atleast_1d(np.asarray(self.tree.expected_value, dtype=np.float64))
            contrib = values if values.ndim == 3 else values[:, :, None]
            contrib = np.moveaxis(contrib, 2, 1)  # n x outputs x columns
        else:
            base, contrib = permutation_values(self.fallback, z, self.background[:FALLBACK_ROWS], self.owner,
                                               len(self.features))
            return self._pick(base, contrib)  # already per raw feature
        return self._pick(base, _group(contrib, self.owner, len(self.features)))

    def _pick(self, base: np.ndarray, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Binary: the positive class's (when both are given); binary and regression: one output."""
        if self.task == "binary" and contrib.shape[1] == 2:
            contrib, base = contrib[:, 1:, :], base[1:]
        if self.task != "multiclass":
            return base[0], contrib[:, 0, :]
        return base, contrib

    def answer(self, usual: Any, expl: Explanation) -> "ExplainedAnswer":
        """The served answer with explanations (`answer`)."""
        return answer(usual, expl)

    def explain(self, x: Any) -> Explanation:
        """The explanation of the raw rows `x` (a frame of the model's features)."""
        z = transform(self.steps, x)
        base, contrib = self._contributions(z)
        if self.sigmoid is not None:
            a, b = self.sigmoid
            base, contrib = -(a * base + b), -a * contrib
        return Explanation(features=tuple(self.features), scale=self.scale,
                           base_value=np.asarray(base, dtype=np.float64), contributions=contrib, classes=self.classes)


def permutation_values(fn: Any, z: np.ndarray, background: np.ndarray, owner: np.ndarray, d: int,
                       permutations: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Model-agnostic Shapley values of the raw features (the groups of columns `owner` gives) by
    permutation sampling against `background`: (base value: the background's mean output (k,),
    contributions n x k x d). Each permutation (and its reverse) sets the row's features into
    the background one at a time, a feature's contribution the change of the mean output it
    makes: the steps telescope, so the contributions add up exactly to the row's output minus
    the base value, whatever the number of permutations.

    Hand-written (what shap's PermutationExplainer does) because shap's compiles its masking
    code with numba on first use: 20 s per process here, a served model's first request."""
    def mean_out(frames: np.ndarray) -> np.ndarray:  # (s x m x columns) -> s x k
        out = np.asarray(fn(frames.reshape(-1, frames.shape[-1])), dtype=np.float64)
        return out.reshape(frames.shape[0], frames.shape[1], -1).mean(axis=1)

    rng = np.random.default_rng(seed)
    base = mean_out(background[None])[0]
    orders = [rng.permutation(d) for _ in range(permutations)]
    orders += [o[::-1] for o in orders]
    values = np.zeros((z.shape[0], base.shape[0], d), dtype=np.float64)
    for i, row in enumerate(z):
        for order in orders:
            frames = np.repeat(background[None], d + 1, axis=0)
            for step, j in enumerate(order, start=1):
                frames[step:, :, owner == j] = row[owner == j]
            out = mean_out(frames)
            values[i, :, order] += out[1:] - out[:-1]  # (i, order) index first: d x k
    return base, values / len(orders)


class LazyExplainer:
    """The served model's `Explainer` (`pyfunc_model.load_explainer`), built on first use from the
    background stored with the model (`explainer.json`), in the worker that answers the first
    request asking for an explanation: nothing is imported or built at load, so a model asked
    for no explanation serves as it always did. `built` raises RuntimeError, saying why, when it
    cannot be built (the model still answers without)."""

    def __init__(self, stored: str, model: Any, task: str) -> None:
        self.stored, self.model, self.task = stored, model, task
        self._built: Explainer | None = None
        self._error: str | None = None

    def built(self) -> "Explainer":
        if self._built is None and self._error is None:
            import json
            import logging

            try:
                with open(self.stored) as fh:
                    saved = json.load(fh)
                self._built = Explainer(self.model, np.asarray(saved["background"], dtype=np.float64), self.task,
                                        saved["features"], saved.get("classes"))
            except Exception as err:  # noqa: BLE001 - never stops the model from answering without
                self._error = f"{type(err).__name__}: {str(err)[:200]}"
                logging.getLogger(__name__).warning("the model's explainer could not be built (%s)", self._error)
        if self._built is None:
            raise RuntimeError(f"this model cannot explain its answers ({self._error})")
        return self._built


class ExplainedAnswer(list):
    """The served answer to a request with `{"explain": true}`: a list of rows, each
    `{"prediction": <the row's usual answer>, "explanation": {...}}` (what MLflow writes as JSON),
    which numpy reads as the usual answer matrix (`__array__`), so that whatever reads the
    model's output as numbers (the server's inference log) sees what it always saw."""

    def __init__(self, rows: list[dict[str, Any]], answer: np.ndarray) -> None:
        super().__init__(rows)
        self.answer = answer

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.answer if dtype is None else self.answer.astype(dtype)


def answer(usual: Any, expl: Explanation) -> ExplainedAnswer:
    """Each row's usual served answer beside its explanation."""
    usual = np.asarray(usual)
    return ExplainedAnswer([{"prediction": a.tolist() if hasattr(a, "tolist") else a, "explanation": e}
                            for a, e in zip(usual, expl.rows())], usual)


def background_matrix(model: Any, x: Any, rows: int = BACKGROUND_ROWS, seed: int = 0) -> np.ndarray:
    """The estimator's matrix of up to `rows` rows of `x` (training rows), drawn at random."""
    if len(x) > rows:
        x = x.sample(rows, random_state=seed)
    return transform(_parts(model)[1], x)


def explainer(model: Any, train: Any, task: str, features: list[str], classes: list[str] | None = None
              ) -> Explainer:
    """An `Explainer` of `model` with a background drawn from `train` (raw training rows)."""
    frame = train.loc[:, list(features)] if hasattr(train, "loc") else train
    return Explainer(model, background_matrix(model, frame), task, features, classes)


def global_importance(expl: Explanation, x: Any, points: int = 200) -> dict[str, Any]:
    """A model's global view from the explanations of a sample of rows `x`: per feature the mean
    absolute contribution (multiclass: summed over the classes), largest first, and a
    beeswarm-like strip (up to `points` rows: each row's contribution (multiclass: to the class
    predicted for the row) and where its value falls among the sampled values, 0 lowest .. 1
    highest; a category's share instead of a rank)."""
    c = np.abs(expl.contributions).sum(axis=1) if expl.contributions.ndim == 3 else expl.contributions
    signed = expl.contributions
    if signed.ndim == 3:  # multiclass: each row's contributions to the class the model predicts for it
        best = np.argmax(expl.output, axis=1)
        signed = signed[np.arange(signed.shape[0]), best, :]
    mean_abs = np.abs(c).mean(axis=0)
    order = np.argsort(-mean_abs)
    n = min(points, signed.shape[0])
    strip = []
    for j in order:
        f = expl.features[j]
        column = x[f].iloc[:n] if hasattr(x, "iloc") else np.asarray(x)[:n, j]
        try:
            values = np.asarray(column, dtype=np.float64)
            rank = (np.argsort(np.argsort(values)) / max(n - 1, 1)).tolist()
        except (TypeError, ValueError):  # a category: how common its value is among the sampled rows
            counts = column.astype(str).map(column.astype(str).value_counts(normalize=True))
            rank = counts.to_numpy(dtype=np.float64).tolist()
        strip.append({"feature": f, "contributions": [float(v) for v in signed[:n, j]], "value_rank": rank})
    return {"scale": expl.scale, "rows": int(signed.shape[0]), "per_class": expl.classes is not None,
            "features": [expl.features[j] for j in order], "mean_abs": [float(mean_abs[j]) for j in order],
            "strip": strip}
