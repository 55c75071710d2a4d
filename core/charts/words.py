"""How charts name things: the dataset's class names, its rows and its probability.

`Words.of(spec)` takes them from a dataset definition (Kobe: "made" / "missed", "shots",
"P(made)"); the defaults are neutral, so a chart never speaks of one dataset by accident.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Words:
    """The nouns a chart uses."""

    positive: str = "positive"
    negative: str = "negative"
    rows: str = "rows"
    proba: str = "P(positive)"

    @classmethod
    def of(cls, spec: Any) -> "Words":
        """The words of a `core.dataset.DatasetSpec`."""
        return cls(positive=spec.target.positive_name, negative=spec.target.negative_name,
                   rows=spec.rows_noun, proba=spec.proba_label)
