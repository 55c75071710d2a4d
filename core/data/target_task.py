"""The column to predict of a table brought in with `dataset add`: its task kind, its classes, and
the sentences that say so (`core.data.infer` uses it).

- two values: **binary** (the positive class the minority one unless chosen, as it always was);
- 3 to `MAX_CLASSES` values that are text, or whole numbers with at most `WHOLE_CLASSES_MAX`
  distinct values: **multiclass** (the classes as the data holds them, numbers ascending, text
  sorted; their names the values as text);
- numbers with more distinct values, or numbers that are not whole: **regression**.

`task=` overrides the inference when the column fits the kind asked for (`fitting_tasks`); a
column that fits no kind (no label, one value, more than `MAX_CLASSES` text classes) is refused.
`check_dev` refuses dev rows that cannot be split and trained on (a class with fewer than
`MIN_CLASS_ROWS` labelled rows, fewer than `MIN_REGRESSION_ROWS` numbers). Every refusal is a
`DatasetError` that names the problem and what to do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.data.column_roles import plain_value, profile, show_value
from core.dataset import TASKS, DatasetError, Target

MAX_CLASSES = 50  # a multiclass target has at most this many classes
WHOLE_CLASSES_MAX = 10  # whole numbers with at most this many distinct values are classes; more: a number
# a class needs this many labelled dev rows: one or more in the test split (20 % by default) and some
# in every training part of the 3 cross-validation folds
MIN_CLASS_ROWS = 5
MIN_REGRESSION_ROWS = 10  # labelled dev rows a regression needs (train, test and 3 folds of a few rows each)
SHOWN_CLASSES = 10  # classes named in a sentence; the rest as "..."


@dataclass(frozen=True)
class TargetFinding:
    """What the target column is: the `Target` (task kind, classes), the model's labels (NaN where
    unlabelled), the sentence saying which task and why (`task_note`), for binary the positive
    class's sentence and share (None otherwise), the kinds the column fits (`fitting`: those its
    values fit, multiclass only when every class has `MIN_CLASS_ROWS` labelled rows; the inferred
    one first when it is among them) and the one inferred from its values (`inferred`)."""

    target: Target
    labels: np.ndarray
    task_note: str
    positive_note: str | None
    positive_share: float | None
    fitting: tuple[str, ...]
    inferred: str


def _text(value: Any) -> str:
    """A value as the text the definition and the model see ("1" for 1.0, "True" for True)."""
    return str(plain_value(value))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, float(value)) if isinstance(value, (int, float)) else (1, str(value))


def _counts(raw: pd.Series) -> pd.Series:
    """Labelled rows per distinct value (plain values: whole numbers as int, text stripped; blank
    text is no label)."""
    seen = raw.value_counts(dropna=True)  # counted first, then read as plain values (cheap on many rows)
    seen = seen[seen > 0]  # a category dtype also counts its unused categories
    plain = pd.Series(seen.to_numpy(), index=[plain_value(v) for v in seen.index], dtype="int64")
    return plain[[v != "" for v in plain.index]].groupby(level=0, sort=False).sum()


def _classes(counts: pd.Series) -> pd.Series:
    """`counts` with values of one text merged (1 and "1" are one class: `Target.encode` reads them
    alike; the number kept), in the classes' stable order: numbers ascending, then text sorted."""
    merged: dict[str, tuple[Any, int]] = {}
    for value, rows in sorted(counts.items(), key=lambda item: _sort_key(item[0])):
        key = _text(value)
        kept, n = merged.get(key, (value, 0))
        merged[key] = (kept, n + int(rows))
    return pd.Series([n for _, n in merged.values()], index=[v for v, _ in merged.values()], dtype="int64")


def fitting_tasks(family: str, counts: pd.Series) -> tuple[str, ...]:
    """The task kinds a column of this value family with these distinct values fits, the inferred
    one first (empty: none)."""
    n = len(counts)
    numbers = family == "number"
    if n == 2:
        return ("binary",)
    if n < 2:
        return ()
    fits = []
    if numbers:
        values = np.asarray(list(counts.index), dtype="float64")
        whole = bool((values == np.round(values)).all())
        if whole and n <= WHOLE_CLASSES_MAX:
            fits = ["multiclass", "regression"]
        else:
            fits = ["regression", "multiclass"] if n <= MAX_CLASSES else ["regression"]
    elif n <= MAX_CLASSES:
        fits = ["multiclass"]
    return tuple(fits)


def _shown(counts: pd.Series, limit: int = 5) -> str:
    by_size = counts.sort_values(ascending=False, kind="stable")
    shown = ", ".join(f"{show_value(plain_value(v))} ({n:,} row{'s' if n != 1 else ''})"
                      for v, n in by_size.head(limit).items())
    return shown + (", ..." if len(counts) > limit else "")


def _no_kind(column: str, family: str, counts: pd.Series) -> DatasetError:
    """The refusal of a target that fits no task kind."""
    n = len(counts)
    if n == 0:
        return DatasetError(f"The target {column!r} has no labelled rows: every value is missing or blank. Choose "
                            "the column that holds the values to predict as --target.")
    if n == 1:
        return DatasetError(f"The target {column!r} holds one value among the rows that have a label "
                            f"({_shown(counts)}): there is nothing to predict. Choose another column as --target, "
                            "or add rows of the other classes.")
    return DatasetError(f"The target {column!r} holds {n:,} classes ({family} values) among the rows that have a "
                        f"label: {_shown(counts)}; a multiclass target has at most {MAX_CLASSES}. Group the rare "
                        "ones into fewer classes (e.g. an 'other' class), or choose another column as --target.")


def _wrong_task(column: str, task: str, family: str, counts: pd.Series, fits: tuple[str, ...]) -> DatasetError:
    """The refusal of a `--task` the column does not fit."""
    n = len(counts)
    if task == "binary":
        why = f"a binary target holds exactly two classes; {column!r} holds {n:,}: {_shown(counts)}"
    elif task == "multiclass":
        why = (f"a multiclass target holds 3 to {MAX_CLASSES} classes; {column!r} holds {n:,}: "
               f"{_shown(counts)}")
    elif family != "number":
        example = f" (e.g. {show_value(counts.index[0])})" if len(counts) else ""
        why = f"a regression target holds numbers; {column!r} holds {family} values{example}"
    else:
        why = f"a regression target holds numbers with more than two values; {column!r} holds {n}: {_shown(counts)}"
    if not fits:
        return DatasetError(f"--task {task} does not fit the target: {why}. " + str(_no_kind(column, family, counts)))
    others = "".join(f" or choose --task {t}" for t in fits[1:])
    return DatasetError(f"--task {task} does not fit the target: {why}. It fits {' or '.join(fits)}: leave --task "
                        f"out (the inferred task is {fits[0]}){others}.")


def _class_list(target: Target, labels: np.ndarray) -> str:
    """'Adelie (44.2%), Chinstrap (19.8%), ...' of the labelled rows."""
    known = labels[~np.isnan(labels)].astype(np.int64)
    counts = np.bincount(known, minlength=len(target.classes))
    total = max(1, int(counts.sum()))
    parts = [f"{name} ({counts[i] / total:.1%})" for i, name in enumerate(target.names[:SHOWN_CLASSES])]
    rest = f", ... ({len(target.names)} in all)" if len(target.names) > SHOWN_CLASSES else ""
    return ", ".join(parts) + rest


def _why(task: str, family: str, counts: pd.Series, chosen: bool, fits: tuple[str, ...]) -> str:
    """Why the task is what it is: chosen, or inferred from the values (and whether --task may change it)."""
    if chosen:
        return "as chosen with --task"
    n = len(counts)
    if task == "binary":
        reason = "two values"
    elif task == "multiclass":
        reason = (f"{n} whole numbers, few distinct values" if family == "number"
                  else f"{n} {'text' if family == 'text' else family} values")
    else:
        values = np.asarray(list(counts.index), dtype="float64")
        whole = bool((values == np.round(values)).all())
        reason = f"{n:,} distinct {'whole numbers' if whole else 'numbers'}"
    others = [t for t in fits if t != task]
    return f"inferred from its {reason}" + (f"; --task {' or '.join(others)} fits too" if others else "")


def _offered(fits: tuple[str, ...], counts: pd.Series) -> tuple[str, ...]:
    """The kinds that may be chosen: multiclass only when every class has rows enough to split
    (`check_dev` refuses it otherwise)."""
    return tuple(t for t in fits if t != "multiclass" or int(counts.min()) >= MIN_CLASS_ROWS)


def task_choices(column: pd.Series) -> tuple[str, ...]:
    """The task kinds a target column may be given: the one inferred from its values first (even
    when it would be refused, e.g. for a class too rare to split), then the others that fit.
    Empty when no kind fits (no label, one value, too many text classes, unsupported values)."""
    family = profile(column).family
    if family not in ("number", "bool", "text"):
        return ()
    counts = _classes(_counts(column))
    fits = fitting_tasks(family, counts)
    return tuple(dict.fromkeys([*fits[:1], *_offered(fits, counts)]))


def read_target(frame: pd.DataFrame, column: str, task: str | None = None, positive: Any = None) -> TargetFinding:
    """The target `column` of `frame` with its task kind: inferred, or `task` when the column fits
    it (see the module docstring); for binary, `positive` (a value or its text) is the positive
    class, else the minority one. Raises `DatasetError` naming what is wrong and what to do."""
    if column not in frame.columns:
        raise DatasetError(f"There is no column {column!r} to predict; the columns are: "
                           f"{', '.join(map(str, frame.columns))}. Give one of them as --target.")
    if task is not None and task not in TASKS:
        raise DatasetError(f"--task {task!r} is not a task kind; choose one of {', '.join(TASKS)} (or leave it out "
                           "to infer it from the target).")
    raw = frame[column]
    family = profile(raw).family
    if family not in ("number", "bool", "text"):
        raise DatasetError(f"The target {column!r} holds {family} values; it must hold classes as numbers, text or "
                           "booleans (e.g. 0/1, yes/no, species names), or numbers to predict (e.g. a price).")
    counts = _classes(_counts(raw))
    fits = fitting_tasks(family, counts)
    if task is None:
        if not fits:
            raise _no_kind(column, family, counts)
        chosen, task = False, fits[0]
    elif task not in fits:
        raise _wrong_task(column, task, family, counts, fits)
    else:
        chosen = True
    inferred, fits = fits[0], _offered(fits, counts)
    if task == "binary":
        return _binary(raw, column, counts, positive, fits, chosen)
    if positive is not None and str(positive).strip():
        raise DatasetError(f"--positive applies to a binary target; {column!r} is a {task} target "
                           f"({'its classes have no positive one' if task == 'multiclass' else 'a number'}). "
                           "Leave --positive out.")
    if task == "multiclass":
        classes = tuple(plain_value(v) for v in counts.index)  # 2 rather than 2.0 beside 0.5 (a float index)
        target = Target(column=column, task="multiclass", classes=classes, class_labels=tuple(map(_text, classes)))
    else:
        target = Target(column=column, task="regression")
    labels, bad = target.encode(raw)
    if bad:
        what = "values that are not finite numbers (text or infinity)" if task == "regression" else \
            "values that are none of its classes"
        raise DatasetError(f"The target {column!r} holds {bad:,} {what}; fix those rows, or leave their target "
                           "empty (unlabelled).")
    if task == "multiclass":
        note = (f"predicts {column}: multiclass, {len(target.classes)} classes: {_class_list(target, labels)} of "
                f"labelled rows ({_why(task, family, counts, chosen, fits)})")
    else:
        known = labels[~np.isnan(labels)]
        with np.errstate(over="ignore", invalid="ignore"):  # numbers near the float limit: inf in the sentence
            mean, spread = known.mean(), known.std()
        note = (f"predicts {column}: regression, a number from {known.min():g} to {known.max():g} (mean "
                f"{mean:.4g}, standard deviation {spread:.4g}; "
                f"{_why(task, family, counts, chosen, fits)})")
    return TargetFinding(target=target, labels=labels, task_note=note, positive_note=None, positive_share=None,
                         fitting=fits, inferred=inferred)


def _binary(raw: pd.Series, column: str, counts: pd.Series, positive: Any, fits: tuple[str, ...],
            chosen_task: bool) -> TargetFinding:
    """A two-valued target, its positive class chosen (the minority unless `positive`), as it always was."""
    counts = dict(counts.items())  # looked up by value (a Series would read a whole number as a position)
    first, later = sorted(counts, key=_sort_key)
    n = int(sum(counts.values()))
    if positive is None:
        balanced = counts[first] == counts[later]
        chosen = later if balanced or counts[later] < counts[first] else first  # the minority; on a tie the later
        how = "the classes are balanced; the later value taken" if balanced else "the minority"
        note = (f"positive class: {show_value(chosen)} ({how}, {counts[chosen] / n:.1%} of labelled rows); "
                "use --positive to choose")
    else:
        matches = [v for v in counts if v == plain_value(positive) or _text(v) == str(positive).strip()]
        if not matches:
            raise DatasetError(f"--positive {str(positive)!r} is not a value of the target {column!r}; its values are "
                               f"{' and '.join(show_value(v) for v in sorted(counts, key=_sort_key))}.")
        chosen = matches[0]
        note = f"positive class: {show_value(chosen)} (as chosen, {counts[chosen] / n:.1%} of labelled rows)"
    negative = later if chosen == first else first
    target = Target(column=column, positive=chosen, negative=negative, positive_name=_text(chosen),
                    negative_name=_text(negative))
    labels, bad = target.encode(raw)
    if bad:  # cannot happen when encode and this reading agree; refuse rather than save a wrong file
        raise DatasetError(f"The target {column!r} holds {bad:,} values that read as neither {show_value(chosen)} "
                           f"nor {show_value(negative)}; recode it to two classes.")
    task_note = (f"predicts {column}: binary, two classes: {_text(negative)} and {_text(chosen)} "
                 f"({_why('binary', '', counts, chosen_task, fits)})")
    return TargetFinding(target=target, labels=labels, task_note=task_note, positive_note=note,
                         positive_share=float(counts[chosen] / n), fitting=fits, inferred="binary")


def predicts(target: Target) -> str:
    """What a target predicts, in a few words: 'churn = yes' (binary: its positive class),
    'species (3 classes)', 'price (a number)'."""
    if target.task == "binary":
        return f"{target.column} = {target.positive_name}"
    if target.task == "multiclass":
        return f"{target.column} ({len(target.classes)} classes)"
    return f"{target.column} (a number{', ' + target.unit if target.unit else ''})"


# --------------------------------------------------------------------------- the dev rows
def check_dev(target: Target, labels: np.ndarray, where: str | None) -> None:
    """Refuse dev rows (`labels`: the model's labels of the rows left for training, NaN where
    unlabelled) that cannot be split and trained on for the target's task. `where` is the
    `--prod-where` filter that set the other rows apart (None: every row is dev)."""
    known = labels[~np.isnan(labels)]
    rows = "labelled rows" if where is None else f"labelled rows left for training by --prod-where {where!r}"
    fewer = "" if where is None else ", or set fewer rows apart as production"
    if target.task == "binary":
        if where is not None and len(np.unique(known)) < 2:
            raise DatasetError(f"The rows left for training by --prod-where {where!r} do not hold both classes of "
                               "labelled rows; set fewer rows apart as production.")
        return
    if target.task == "multiclass":
        counts = np.bincount(known.astype(np.int64), minlength=len(target.classes))
        rare = [(target.classes[i], int(n)) for i, n in enumerate(counts) if n < MIN_CLASS_ROWS]
        if rare:
            shown = ", ".join(f"{show_value(v)} ({n} row{'s' if n != 1 else ''})" for v, n in rare[:SHOWN_CLASSES])
            numbers = all(isinstance(v, (int, float)) for v in target.classes)
            merge = "it into another class" if len(rare) == 1 else "them into other classes"
            raise DatasetError(
                f"The target {target.column!r} has {len(rare)} class{'es' if len(rare) != 1 else ''} too rare to "
                f"split among the {rows}: {shown}{', ...' if len(rare) > SHOWN_CLASSES else ''}; each class needs "
                f"at least {MIN_CLASS_ROWS} labelled rows (some for the test split and for every cross-validation "
                f"fold). Merge {merge}, or drop those rows"
                + (", or predict the number itself with --task regression" if numbers else "") + f"{fewer}.")
        return
    if len(known) < MIN_REGRESSION_ROWS or len(np.unique(known)) < 2:
        what = (f"only {len(known):,}" if len(known) < MIN_REGRESSION_ROWS
                else f"{len(known):,} but all the same value ({known[0]:g})")
        raise DatasetError(f"The regression target {target.column!r} has {what} {rows}; a regression needs at least "
                           f"{MIN_REGRESSION_ROWS} labelled rows of different values to split into train, test "
                           f"and cross-validation folds. Add labelled rows{fewer}.")
