"""The drift report's charts as inline SVG: drawn from a `DriftReport` alone, no script, no
network, a few kilobytes each, so the HTML report (`html.report_html`) opens anywhere and can be
mailed.

Written out here rather than with Plotly (the Drift page's charts, `core/charts/drift.py`): a
standalone Plotly page carries 3.5 MB of JavaScript per report, and a static export needs Kaleido
and a browser; the report is rendered inside every `python -m core drift` run, where importing
Plotly alone would cost a third of a second.
"""
from __future__ import annotations

import html
from typing import Sequence

from core.monitoring.drift_report import DriftReport, FeatureDrift, by_severity, top_categories

TRAIN, BATCH, TEST = "#552583", "#FDB927", "#7A6E5D"
DRIFT, STABLE = "#C62828", "#2E7D32"
FONT = 'font-family="system-ui,sans-serif" font-size="11"'
CHAR_PX = 6.6  # the width of one character of FONT, generously (names and labels get this room)


def _text(x: float, y: float, s: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {FONT} {extra}>{html.escape(s)}</text>'


def effect_bars(r: DriftReport, plot: int = 470) -> str:
    """Each feature's effect size as a multiple of its threshold (the dashed line is 1 = drift),
    capped at 5 (the label gives the figures), worst at the top (`drift_report.by_severity`, as
    on the Drift page). The names' column is as wide as the longest name; a label that would run
    past the chart's right edge is written inside its bar."""
    ranked = by_severity(r)
    row, cap = 22, 5.0
    left = max(150, int(CHAR_PX * max((len(name) for name, _, _ in ranked), default=0)) + 12)
    width = left + plot + 20
    height = row * len(ranked) + 40
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="Drift per feature">', _text(left, 14, "effect size ÷ its threshold (≥ 1 = drift)")]
    for i, (name, ratio, label) in enumerate(ranked):
        f = r.stats.features[name]
        y = 24 + i * row
        w = plot * min(ratio, cap) / cap
        text = label + (" (capped)" if ratio > cap else "")
        parts.append(_text(left - 6, y + 13, name, "end"))
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                     f'fill="{DRIFT if f.drift else STABLE}"><title>{html.escape(label)}</title></rect>')
        if w + 4 + CHAR_PX * len(text) > plot + 20:  # no room on its right: inside the bar, at its end
            parts.append(_text(left + w - 4, y + 13, text, "end", 'fill="#fff"'))
        else:
            parts.append(_text(left + w + 4, y + 13, text, extra='fill="#444"'))
    x1 = left + plot / cap
    parts.append(f'<line x1="{x1:.1f}" x2="{x1:.1f}" y1="20" y2="{height - 14}" stroke="#444" stroke-dasharray="4 3"/>')
    parts.append(_text(x1, height - 2, "threshold", "middle", 'fill="#444"'))
    parts.append("</svg>")
    return "".join(parts)


def _bars(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], title: str,
          width: int = 640, height: int = 200, every: int = 1, fmt: str = ".1%") -> str:
    """Grouped vertical bars: one group per label, one bar per series (name, colour, values)."""
    left, bottom, top = 44, 34, 22
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((v for _, _, vals in series for v in vals), default=0.0) or 1.0
    n, k = max(len(labels), 1), max(len(series), 1)
    group = plot_w / n
    bar = max(group * 0.8 / k, 0.5)
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}">', _text(left, 14, title)]
    for j, (name, colour, vals) in enumerate(series):
        for i, v in enumerate(vals):
            h = plot_h * v / peak
            x = left + i * group + group * 0.1 + j * bar
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}" opacity="0.85"><title>{html.escape(f"{labels[i]}: {name} {v:{fmt}}")}'
                         f'</title></rect>')
        lx = width - 80 * k - 10 + j * 80
        parts.append(f'<rect x="{lx}" y="5" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(lx + 14, 14, name))
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append(_text(left - 4, top + 8, f"{peak:{fmt}}", "end", 'fill="#666"'))
    parts.append(_text(left - 4, top + plot_h, "0", "end", 'fill="#666"'))
    for i, lab in enumerate(labels):
        if i % every == 0:
            x = left + (i + 0.5) * group
            parts.append(_text(x, top + plot_h + 12, lab[:14], "middle", 'fill="#444"'))
    parts.append("</svg>")
    return "".join(parts)


def distribution(f: FeatureDrift, ref_label: str = "training") -> str:
    """Reference vs batch shares of one column: its coarse histogram (continuous), its values
    (discrete) or its top categories (categorical)."""
    if f.kind == "continuous":
        edges = list(f.bins)
        labels = [f"{x:.4g}" for x in edges[:-1]]
        every = max(len(labels) // 8, 1)
    elif f.kind == "categorical":
        labels, ref, batch = top_categories(f)
        return _bars(labels, [(ref_label, TRAIN, ref), ("batch", BATCH, batch)], f"{f.name}: share of rows")
    else:
        labels, every = [f"{x:g}" for x in f.bins], 1
    return _bars(labels, [(ref_label, TRAIN, f.ref_share), ("batch", BATCH, f.batch_share)],
                 f"{f.name}: share of rows", every=every)


def performance(r: DriftReport) -> str:
    """Test figures, the label-free estimate and (with labels) the realised figures."""
    keys = [k for k in r.keys if k != "interval_coverage"]  # a share beside errors would be lost: in the table

    def shown(v: float | None) -> float:
        return float(v) if v is not None and v == v else 0.0

    series = [("test", TEST, [shown(r.test_metrics.get(k)) for k in keys]),
              ("estimated", BATCH, [shown(r.estimate.value(k)) for k in keys])]
    if r.realized is not None:
        series.append(("realised", TRAIN, [shown(r.realized.get(k)) for k in keys]))
    return _bars(keys, series, "Model health on the batch", fmt=".3f")
