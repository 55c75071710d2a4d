"""`segments`: the champion's metrics per segment of every feature, worst first (on the test split,
or on a labelled batch with --batch); `core.monitoring.segments` computes, this module reads the
champion and the rows at the edge and prints the report."""
from __future__ import annotations

import argparse
from typing import Any

from core.cli import options
from core.config import Settings
from core.dataset import DatasetSpec
from core.progress import ProgressFn

MAX_CATEGORIES = (1, 1000)
BINS = (1, 100)
MIN_ROWS = (1, 1_000_000)


def cmd_segments(args: argparse.Namespace, settings: Settings, on_progress: ProgressFn) -> dict[str, Any]:
    from core.errors import TrackingError
    from core.modeling import registry
    from core.monitoring import segment_sources
    from core.progress import Stopwatch

    clock = Stopwatch()
    model = registry.champion(settings)  # read once: task, classes, threshold, feature set
    batch = None
    if args.batch is not None:  # read and validated first: its problems come before a missing champion
        from core.data import batches

        batch = batches.read_batch(args.batch, model.scoped(settings) if model else settings)
        if not batch.has_labels:
            raise segment_sources.SegmentsError(segment_sources.unlabelled_message(batch.name, settings.target))
    if model is None:
        raise TrackingError(registry.NO_CHAMPION)
    if args.criterion is not None and args.criterion not in model.kind.criteria:  # a champion of another kind
        raise options.UsageError(f"python -m core segments: --criterion {args.criterion}: the champion is a "
                                 f"{model.kind.name} model, ranked by one of {', '.join(model.kind.criteria)}")
    opts = {"criterion": args.criterion, "max_categories": args.max_categories, "bins": args.bins,
            "min_rows": args.min_rows, "on_progress": on_progress}
    if batch is None:
        result = segment_sources.for_test_split(settings, model, **opts)
    else:
        result = segment_sources.for_batch(batch, settings, model, **opts)
    out = result.to_dict()
    out["seconds"] = round(clock.seconds, 3)
    return out


def add_segments(sub: argparse._SubParsersAction, spec: DatasetSpec) -> None:
    from core.modeling.tasks import task_kind
    from core.monitoring import segments

    kind = task_kind(spec.task)
    p = sub.add_parser("segments", help="the champion's metrics per segment of every feature (each category, "
                                        "quantile bins of a number, missing values), worst first, with each "
                                        "segment's gap to the whole (default: on the test split)")
    p.add_argument("--batch", type=options.path, default=None, metavar="FILE",
                   help=f"a labelled parquet or CSV batch (the features {','.join(spec.features)} and "
                        f"{spec.target.column}) instead of the test split")
    p.add_argument("--criterion", default=None, choices=list(kind.criteria),
                   help=f"the metric that ranks the segments (a {kind.name} target takes "
                        f"{', '.join(kind.criteria)}; default the task's criterion, {kind.criterion})")
    p.add_argument("--max-categories", type=options.whole(*MAX_CATEGORIES), default=segments.MAX_CATEGORIES,
                   metavar="N", help=f"categories kept per feature, the rest pooled as {segments.OTHER} "
                                     f"({MAX_CATEGORIES[0]}-{MAX_CATEGORIES[1]}, default {segments.MAX_CATEGORIES})")
    p.add_argument("--bins", type=options.whole(*BINS), default=segments.BINS, metavar="N",
                   help=f"quantile bins per numeric feature ({BINS[0]}-{BINS[1]}, default {segments.BINS})")
    p.add_argument("--min-rows", type=options.whole(*MIN_ROWS), default=segments.MIN_ROWS, metavar="N",
                   help=f"a segment with fewer labelled rows is marked too small to judge and not ranked "
                        f"({MIN_ROWS[0]}-{MIN_ROWS[1]:,}, default {segments.MIN_ROWS})")
    p.set_defaults(func=cmd_segments)
