"""Progress reporting for long work: a callback taking a fraction (0..1) and the step's name."""
from __future__ import annotations

import time
from typing import Callable, Optional

ProgressFn = Optional[Callable[[float, str], None]]


def report(on_progress: ProgressFn, fraction: float, step: str) -> None:
    """Call `on_progress(fraction, step)` if a callback was given (fraction clipped to 0..1)."""
    if on_progress is not None:
        on_progress(min(max(float(fraction), 0.0), 1.0), step)


def scaled(on_progress: ProgressFn, start: float, end: float) -> ProgressFn:
    """A callback mapping 0..1 onto start..end of `on_progress` (for a sub-step)."""
    if on_progress is None:
        return None
    return lambda f, step: report(on_progress, start + (end - start) * f, step)


class Stopwatch:
    """Elapsed seconds since creation."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0
