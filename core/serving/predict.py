"""Single-request inference: read one row given as JSON text (`parse_row`, `load_row`), validate
it against the definition's rules, score it on a model server, log it to the inference log
(`predict_one`), and the same request as `curl` or as `python -m core predict`.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from core.config import THRESHOLD_RULE, Settings, valid_threshold
from core.data import profile
from core.rules import InvalidInputError
from core.serving import answers, inference_log
from core.serving.client import (
    NO_EXPLANATIONS,
    Client,
    PredictionError,
    ServerIdentity,
    WrongServerError,
    identity_problem,
)
from core.modeling import registry
from core.modeling.model_version import ModelVersion
from core.modeling.tasks import BINARY
from core.serving.server import champion_version, status

MAX_ROW_CHARS = 100_000  # one row is a few hundred characters; anything far larger is a mistake
MAX_NUMBER_DIGITS = 100  # a whole number in a row with more digits than this is refused while parsing
CAPTURE_WAIT_S = 2.0  # the managed server writes a tagged request at once; its row is waited for this long


# --------------------------------------------------------------------------- the class threshold
def check_threshold(value: object, what: str = "The class threshold") -> float:
    """`value` as a float, or InvalidInputError: at 0 or 1 every row gets one class, NaN gives none."""
    if not valid_threshold(value):
        raise InvalidInputError(f"{what} must be {THRESHOLD_RULE}, not {value!r}.")
    return float(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one row as JSON text
def _refuse_constant(name: str) -> Any:
    raise InvalidInputError(f"{name} is not a JSON number; give a finite number (or null for a missing value)")


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise InvalidInputError(f"a whole number of {digits:,} digits is far outside any feature's domain")
    return int(text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in pairs:
        if key in row:
            raise InvalidInputError(f"the column {key!r} is given twice")
        row[key] = value
    return row


def parse_row(text: str, what: str, example: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The row in the JSON text `text`: one flat object of column -> number (or null).

    Raises `InvalidInputError` naming `what` (e.g. "--input") for text that is too long, not
    JSON, nests too deeply, holds NaN/Infinity, whole numbers of more than MAX_NUMBER_DIGITS
    digits, a column twice, or is not one object of plain values; `example` is shown as the
    shape to give. The values themselves are checked by the rule table (`validate_row`).
    """
    shape = f"give one JSON object like '{json.dumps(dict(example))}'" if example else "give one JSON object"
    if len(text) > MAX_ROW_CHARS:
        raise InvalidInputError(f"{what} is {len(text):,} characters long; one row is one small JSON object "
                                f"(at most {MAX_ROW_CHARS:,} characters): {shape}.")
    try:
        row = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int,
                         object_pairs_hook=_unique_keys)
    except InvalidInputError as err:
        raise InvalidInputError(f"{what} is refused: {err}; {shape}.") from None
    except RecursionError:
        raise InvalidInputError(f"{what} nests arrays or objects too deeply; {shape}.") from None
    except ValueError as err:  # json.JSONDecodeError, or an integer over Python's digit limit
        raise InvalidInputError(f"{what} is not valid JSON ({err}); {shape}.") from None
    if not isinstance(row, dict):
        kind = {list: "array", str: "string", int: "number", float: "number"}.get(type(row), "null or boolean")
        raise InvalidInputError(f"{what} must be one JSON object, not a JSON {kind}; {shape}.")
    nested = [str(k) for k, v in row.items() if isinstance(v, (dict, list))]
    if nested:
        raise InvalidInputError(f"{what}: {', '.join(nested)} must be a number, not a JSON array or object; "
                                f"{shape}.")
    return row


def load_row(value: str, what: str, example: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The row in `value`: JSON text, or `@path` to a UTF-8 file holding it (see `parse_row`)."""
    if not value.startswith("@"):
        return parse_row(value, what, example)
    if not value[1:].strip():
        raise InvalidInputError(f"{what} '@' must be followed by a file name, e.g. @row.json.")
    path = Path(value[1:]).expanduser()
    limit = MAX_ROW_CHARS * 4  # UTF-8 takes at most 4 bytes a character
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInputError(f"{what} names the file {str(path)!r}, which does not exist; "
                                f"give @FILE with a JSON object in it, or the JSON text itself.") from None
    except (IsADirectoryError, NotADirectoryError, PermissionError) as err:
        raise InvalidInputError(f"{what} names {str(path)!r}, which cannot be read ({err.strerror}); "
                                f"give @FILE with a JSON object in it.") from None
    except UnicodeDecodeError:
        raise InvalidInputError(f"{what}: the file {str(path)!r} is not UTF-8 text; save the JSON object "
                                f"as UTF-8.") from None
    except (OSError, ValueError) as err:  # a name too long, a NUL byte in it, ...
        raise InvalidInputError(f"{what}: the file {str(path)!r} cannot be read ({err}).") from None
    if len(data) > limit:
        raise InvalidInputError(f"{what}: the file {str(path)!r} is over {limit:,} bytes; one row is one "
                                f"small JSON object.")
    return parse_row(text, f"{what} (the file {path})", example)


# --------------------------------------------------------------------------- single-shot inference
@dataclass(frozen=True)
class Prediction:
    """One scored row: the positive class's probability, the class at the threshold (as the
    model's `label`, 1 = the positive class; as the data holds it, `class_value`; by its human
    name, `class_name`), version, latency and warnings.

    A multiclass model's row: `probabilities` ({class name: probability}, label order), the most
    probable class (`label` its position, `class_value`, `class_name`), `proba` its probability,
    no threshold. A regression model's: `prediction` and its `interval` ([low, high], None when
    the version gives no interval) at `interval_level`; no class nor probability."""

    proba: float | None
    label: int | None
    threshold: float | None
    model_version: str | None
    latency_ms: float
    url: str
    inputs: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    log_id: int | None = None
    server_ms: float | None = None  # the server's own time (its Server-Timing header), None if not sent
    network_ms: float | None = None  # latency_ms less server_ms: network round trip and the client's work
    champion_version: str | None = None  # looked up when the version served is known
    stale: bool = False  # the managed server serves another version than the champion
    class_value: Any = None  # the class as the target holds it, e.g. 0 where the positive class is 0
    class_name: str = ""  # the definition's name of that class, e.g. "made"
    checked: bool = False  # the server named what it serves and it was the expected one (see `check_answer`)
    task: str = "binary"
    probabilities: dict[str, float] | None = None  # multiclass: {class name: probability}
    prediction: float | None = None  # regression: the predicted value
    interval: tuple[float, float] | None = None  # regression: [low, high]
    interval_level: float | None = None  # regression: the interval's nominal coverage, e.g. 0.9
    # asked with `explain`: {"base_value", "contributions": {feature: value}, "scale", "output"}
    # (multiclass: base value, contributions and output per class name; core/modeling/explanations.py)
    explanation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def answer_fields(spec: Any, model: ModelVersion | None, answer: Any) -> dict[str, Any]:
    """The `Prediction` fields of one served row of a multiclass or regression model (`answer`:
    the k probabilities, or prediction, lower, upper); class names from the version (its own
    tag), else the definition."""
    import math

    row = [float(v) for v in answer]
    kind = (model.task if model is not None else None) or spec.task
    if kind == "regression":
        low, high = row[1], row[2]
        level = (model.interval or {}).get("level") if model is not None else None
        known = not (math.isnan(low) or math.isnan(high))
        return {"task": kind, "proba": None, "label": None, "threshold": None, "prediction": row[0],
                "interval": (low, high) if known else None, "interval_level": level if known else None}
    names = tuple(model.classes) if model is not None and model.classes else tuple(spec.target.names)
    if len(row) != len(names):
        raise PredictionError(f"The model server answered {len(row)} values per row, but the {kind} model has "
                              f"{len(names)} classes ({', '.join(names)}): is it serving another model?")
    best = max(range(len(row)), key=row.__getitem__)
    return {"task": kind, "proba": row[best], "label": best, "threshold": None,
            "probabilities": dict(zip(names, row)), "class_value": spec.target.value_of(best),
            "class_name": names[best]}


def answer_class(spec: Any, proba: float, threshold: float) -> tuple[int, Any, str]:
    """The class of a probability at `threshold` as (the model's label: 1 for the positive class,
    the class as the data holds it, its human name): what `predict` prints and the Serve page shows."""
    label = int(proba >= threshold)
    return label, spec.target.value_of(label), spec.target.name_of(label)


def number_text(value: float) -> str:
    """A predicted number as a person reads it: thousands separated, three significant digits
    and no fewer than its whole part (3,210; 24.6; 0.0123)."""
    import math

    if value != value:
        return "unknown"
    size = abs(value)
    digits = 0 if size >= 100 or size == 0 else min(6, 2 - int(math.floor(math.log10(size))))
    return f"{value:,.{max(digits, 0)}f}"


def answer_text(spec: Any, answer: Mapping[str, Any]) -> str:
    """One served answer in words, as the Serve page says it (`answer`: a `Prediction.to_dict()`):
    a regression "Predicted price: 3,210 USD (90 % interval 2,450 – 3,970)"; a multiclass model
    "Predicted species: Gentoo (94.2 %; then Chinstrap 5.1 %)"; a binary one its class and
    probability "Predicted made (P(made) 61.0 %)". Plain text (names come from the data: the
    page escapes it)."""
    unit = f" {spec.target.unit}" if spec.target.unit else ""
    task = answer.get("task") or "binary"
    if task == "regression":
        value = f"Predicted {spec.target.column}: {number_text(answer['prediction'])}{unit}"
        interval, level = answer.get("interval"), answer.get("interval_level")
        if not interval:
            return value + " (no interval: the version gives none)"
        low, high = interval
        told = f"{level:.0%}".replace("%", " %") if level is not None else "its"
        return f"{value} ({told} interval {number_text(low)} – {number_text(high)})"
    if task == "multiclass":
        ranked = sorted((answer.get("probabilities") or {}).items(), key=lambda kv: -kv[1])
        if not ranked:
            return f"Predicted {spec.target.column}: {answer.get('class_name')}"
        (best, p), rest = ranked[0], ranked[1:]
        then = f"; then {rest[0][0]} {_percent(rest[0][1])}" if rest else ""
        return f"Predicted {spec.target.column}: {best} ({_percent(p)}{then})"
    return f"Predicted {answer.get('class_name')} ({spec.proba_label} {_percent(answer['proba'])})"


def _percent(p: float) -> str:
    return f"{100.0 * p:.1f} %"


def served_version(settings: Settings, url: str) -> str | None:
    """The model version behind `url` when it is the managed server, else None (unknown)."""
    now = status(settings)
    if now.running and now.url.rstrip("/") == url.rstrip("/"):
        return now.model_version
    return None


def staleness(settings: Settings, version: str | None) -> tuple[str | None, bool]:
    """(the champion's version, whether `version` - the one a server serves - is another one).
    An unknown version (a server the workbench did not start) is not called stale."""
    if version is None:
        return None, False
    champion = champion_version(settings)
    return champion, champion is not None and str(version) != champion


def stale_warning(served: str | None, champion: str | None, url: str) -> str:
    """What to tell someone whose request a stale server answered."""
    return (f"the model server at {url} serves v{served}, but the champion is v{champion}: this answer comes from "
            f"the old version. Restart the server on the champion (Serve page, or `python -m core serve stop` "
            f"then `python -m core serve`).")


def expected_identity(settings: Settings, model: ModelVersion | None) -> ServerIdentity:
    """What the server answering for `model` must serve: the settings' dataset and the model's
    registered name (the dataset's model when `model` is None), any version: a server of the same
    model on another version than the champion is stale (answered, with `stale` and a warning),
    not another's server."""
    return ServerIdentity(settings.dataset.name, model.name if model is not None else settings.model_name)


UNCHECKED_WARNING = ("the model server at {url} does not say which dataset and model it serves (no "
                     "X-Workbench-Model header: not a server the workbench started), so that could not be checked")


def check_answer(client: Any, expected: ServerIdentity) -> bool:
    """True when `client`'s last answer named what its server serves and it is `expected`; False
    when the server named nothing (accepted: it could not be checked); `WrongServerError` naming
    what it serves when it is another dataset, model or version."""
    found = getattr(client, "last_identity", None)
    if found is None:
        return False
    problem = identity_problem(client.url, expected, found)
    if problem:
        raise WrongServerError(problem)
    return True


def answering_model(settings: Settings) -> ModelVersion | None:
    """The version a request to the managed server is answered by: the one it serves when it runs,
    else the champion (None without either). Read once at the edge (page, command)."""
    now = status(settings)
    served = registry.version_info(settings, now.model_version) if now.running and now.model_version else None
    return served or registry.champion(settings)


def row_inputs(settings: Settings, row: Mapping[str, Any], model: ModelVersion | None) -> Any:
    """The dataset seen through the inputs a row is checked against: `model`'s feature set, or
    without a known version (a server elsewhere, no champion here) the set whose columns the row
    gives (else the default set, whose refusal names the missing columns)."""
    if model is not None:
        return model.inputs(settings.dataset)
    return settings.dataset.with_feature_set(settings.dataset.feature_set_for(row))


def predict_one(
    settings: Settings,
    row: Mapping[str, Any],
    model: ModelVersion | None,
    url: str | None = None,
    threshold: float | None = None,
    client: Client | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    log_source: str | None = "serve-page",
    allow_unseen: bool = False,
    explain: bool = False,
) -> Prediction:
    """Validate one row for `model` (the version read at the edge: its inputs, its threshold), score
    it on the server and see it in the inference log.

    `url` defaults to the managed server's address; `ranges` (training min/max per feature)
    adds warnings for values the model never saw. The request is tagged with `log_source`:
    the workbench's server logs every request itself (`core/serving/capture.py`), and
    `log_id` is then its row there (waited for up to CAPTURE_WAIT_S; None when the server is
    not the managed one of `settings`, whose log it is not); a server that does not log (no
    `X-Workbench-Capture` answer header) has the row appended here. `log_source=None` sends the
    request untagged and appends nothing here (the managed server still logs it, as source
    `http`, like any client's). The server logs the class at the version's own threshold, not at
    an asked `threshold`. The latency
    is split into the server's own time (its `Server-Timing` header) and the rest (network
    round trip and client); `stale` says whether the managed server serves another version
    than the champion.
    The answer's headers must name the settings' dataset and `model`'s registered name
    (`check_answer`): another dataset's or model's server raises `WrongServerError` (also instead
    of its refusal of the row); another version of the same model is answered as stale; a server
    naming nothing is accepted with `checked` False.
    `explain` asks the server for the row's explanation too (`Prediction.explanation`).
    Raises `core.rules.InvalidInputError` (a bad row or threshold) and `InvalidURLError`
    before any request, `ServerNotRunningError`, `WrongServerError` or `PredictionError` after.
    """
    spec = row_inputs(settings, row, model)
    clean = spec.rules.validate_row(row, what=spec.row_noun, allow_unseen=allow_unseen)
    kind = answers.for_task((model.task if model is not None else None) or spec.task)
    if threshold is not None and not kind.thresholded:
        raise InvalidInputError(f"A class threshold applies to a binary model; this one is {kind.name} "
                                + ("(its class is the most probable one)." if kind.name == "multiclass"
                                   else "(it predicts a number and its interval).")
                                + " Leave the threshold out.")
    asked = None if threshold is None else check_threshold(threshold)
    url = url or status(settings).url
    own = client is None
    expected = expected_identity(settings, model)
    client = client or Client(url, settings.request_timeout_s, spec.features, expected=expected)
    params = None
    if allow_unseen and spec.categorical_features:
        from core.modeling.pyfunc_model import ALLOW_UNSEEN  # imports MLflow: only when asked for

        params = {ALLOW_UNSEEN: True}
    # the workbench's own client tags the request: the server logs it under this source
    tag = {"source": log_source} if log_source is not None and isinstance(client, Client) else {}
    try:
        t0 = time.perf_counter()
        rows = [list(clean.values())]
        explanation = None
        try:
            if explain:  # the answer and its explanation (issue 31)
                matrix, explained = client.explain_rows(rows, params=params, **tag)
                explanation = explained[0] if explained else None
                proba, answer = float(matrix[0, -1]), matrix[0].tolist()
            elif kind.thresholded:
                proba = float((client.predict_rows(rows, params=params, **tag) if params or tag
                               else client.predict_rows(rows))[0])
            else:  # the whole answer: k probabilities, or prediction, lower, upper
                answer = client.answer_rows(rows, params=params, **tag)[0].tolist()
        except PredictionError:
            check_answer(client, expected)  # another model's refusal: say whose server it is instead
            raise
        latency_ms = (time.perf_counter() - t0) * 1000.0
        checked = check_answer(client, expected)
        server_ms = getattr(client, "last_server_ms", None)  # a stand-in client may not time
        captured = getattr(client, "last_capture", None) if tag else None
    finally:
        if own:
            client.close()
    told = getattr(client, "last_identity", None) if checked else None
    # the managed server's version from its state; another workbench server's from its answer
    version = served_version(settings, client.url) or (told.version if told is not None else None)
    champion, stale = staleness(settings, version)
    # the version that answered decides at its own threshold, unless one was asked for
    answered = model if model is not None and version in (None, model.version) else (
        registry.version_info(settings, version) if version is not None else None) or model
    warnings = tuple(profile.out_of_training_range(clean, ranges, spec.row_noun)) if ranges else ()
    if explain and explanation is None:  # the answer stands; the explanation cannot be had
        warnings = (*warnings, NO_EXPLANATIONS[0].upper() + NO_EXPLANATIONS[1:] + ".")
    if kind.thresholded:
        own_threshold = answered.decision_threshold if answered is not None else BINARY.default_threshold
        threshold = asked if asked is not None else check_threshold(own_threshold)
        label, class_value, class_name = answer_class(spec, proba, threshold)
        fields: dict[str, Any] = {"proba": proba, "label": label, "class_value": class_value,
                                  "class_name": class_name, "threshold": threshold}
        logged: Any = proba
    else:
        fields = answer_fields(spec, answered, answer)
        logged = answer
    log_id = None
    if log_source is not None and captured is None:  # a server that does not log its requests
        log_id = inference_log.append(settings, clean, logged, fields["threshold"], version, latency_ms, log_source)
    elif captured is not None and version is not None:  # the managed server logged it: its row's id
        log_id = inference_log.wait_for_request(settings, captured, CAPTURE_WAIT_S)
    return Prediction(
        **fields,
        model_version=version,
        latency_ms=round(latency_ms, 3), url=client.url, inputs=clean, warnings=warnings, log_id=log_id,
        server_ms=None if server_ms is None else round(server_ms, 3),
        network_ms=None if server_ms is None else round(max(latency_ms - server_ms, 0.0), 3),
        champion_version=champion, stale=stale, checked=checked, explanation=explanation,
    )


def curl_example(url: str, row: Mapping[str, Any], features: tuple[str, ...]) -> str:
    """The exact request as a copyable `curl` command."""
    body = json.dumps({"dataframe_split": {"columns": list(features), "data": [[row[f] for f in features]]}})
    return (
        f"curl -s -X POST {url.rstrip('/')}/invocations \\\n"
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )


def cli_example(row: Mapping[str, float], features: tuple[str, ...], url: str | None = None, *,
                dataset: str | None = None, threshold: float | None = None, allow_unseen: bool = False) -> str:
    """The same request as a copyable `python -m core predict` command (one JSON object printed);
    whole values are written without a decimal point. `dataset` (the dataset whose definition
    checks the row: without it the command works on the home's active one), `url`, `threshold` and
    `--allow-unseen` only when given."""
    values = {f: row[f] if isinstance(row[f], str) else float(row[f]) for f in features}
    body = json.dumps({f: int(v) if isinstance(v, float) and v.is_integer() else v for f, v in values.items()})
    which = f" --dataset {shlex.quote(dataset)}" if dataset else ""
    target = f" --url {shlex.quote(url.rstrip('/'))}" if url else ""
    cut = f" --threshold {threshold:g}" if threshold is not None else ""
    unseen = " --allow-unseen" if allow_unseen else ""
    return f"python -m core predict{which} --input {shlex.quote(body)}{target}{cut}{unseen} --json"
