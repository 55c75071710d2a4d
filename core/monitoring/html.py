"""The drift report as one standalone HTML page (no scripts, no network: opens anywhere),
rendered from a `DriftReport`: the verdict and the rules that fired, the charts (inline SVG,
`svg`), the figures, and every statistic's definition with its threshold.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from core.monitoring import svg
from core.monitoring.drift_report import DEFINITIONS, by_severity, effect_ratio

if TYPE_CHECKING:
    from core.monitoring.drift_report import DriftReport

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1000px}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f1f8}td:first-child,th:first-child{text-align:left}
.bad{color:#b71c1c;font-weight:600}.ok{color:#2e7d32}.bar{display:inline-block;height:.7rem;background:#552583}
.note{background:#fff8e1;border-left:4px solid #fdb927;padding:.6rem .8rem}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.charts svg{border:1px solid #eee}
td.def{text-align:left;max-width:620px}
"""


def _f(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        if x != x:
            return "n/a"
        return f"{x:.2e}" if 0 < abs(x) < 10 ** -digits else f"{x:.{digits}f}"
    return html.escape(str(x))


def _flag(drift: bool) -> str:
    return '<span class="bad">drift</span>' if drift else '<span class="ok">stable</span>'


def _calibration(r: "DriftReport") -> str:
    """The calibration's quality on the test split (binary: the probability; multiclass: the
    predicted class's; regression: none)."""
    if r.reliability_test is None or r.reliability_test_calibrated is None:
        return ""
    what = "" if r.task == "binary" else " of the predicted class's probability"
    return (f"<p>Calibration{what} on the test split: ECE {r.reliability_test.ece:.3f} raw, "
            f"{r.reliability_test_calibrated.ece:.3f}\nafter isotonic calibration (out of fold).</p>")


def _prediction(r: "DriftReport") -> str:
    """The prediction's drift (binary and regression: its mean, PSI and Wasserstein; multiclass:
    the predicted class shares and their JS distance, and each class probability's drift)."""
    p = r.prediction
    if p.kind != "categorical":
        return (f"<p>Mean {html.escape(p.name)} {_f(p.mean_ref)} (test) → {_f(p.mean_batch)} (batch); PSI {_f(p.psi)},\n"
                f"Wasserstein / σ {_f(p.wasserstein)}: {_flag(p.drift)}</p>")
    from core.monitoring.drift_report import prediction_text

    detail = "".join(f"<li>{html.escape(name)}: mean {_f(f.mean_ref)} → {_f(f.mean_batch)}, PSI {_f(f.psi)}, "
                     f"Wasserstein / σ {_f(f.wasserstein)}: {_flag(f.drift)}</li>" for name, f in r.prediction_detail.items())
    return (f"<p>{html.escape(prediction_text(r))} JS distance {_f(p.js)} ({_f(p.js_excess)} beyond chance): "
            f"{_flag(p.drift)}</p>" + (f"<ul>{detail}</ul>" if detail else ""))


def _words(r: "DriftReport") -> str:
    """A multiclass or regression model's performance in words (`DriftReport.words`)."""
    return f"<p><b>{html.escape(r.words)}</b></p>" if r.words else ""


def report_html(r: "DriftReport") -> str:
    """Render a drift report (figures as tables and CSS bars). Every per-feature part (the effect
    bars, the table, the new categories, the distributions) lists the features worst first, in
    the Drift page's order (`drift_report.by_severity`)."""
    t = r.thresholds
    order = [name for name, _, _ in by_severity(r)]
    rows, new_cats = [], []
    for name in order:
        f = r.stats.features[name]
        ratio = effect_ratio(f, t)[0]
        excess = "" if f.js_excess is None else f" ({_f(f.js_excess)})"
        rule = f" ({html.escape(f.rule)})" if f.rule else ""
        width = min(200, int(200 * ratio / 2))
        missing = f"{f.missing_ref:.1%} → {f.missing_batch:.1%}" if f.reports_missing else "–"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{f.kind}</td><td>{_f(f.psi)}</td><td>{_f(f.wasserstein)}</td>"
            f"<td>{_f(f.js)}{excess}</td><td>{_f(f.p_value)} ({f.test})</td><td>{f.out_of_range:.2%}</td>"
            f"<td>{_f(f.mean_ref)} → {_f(f.mean_batch)}</td><td>{missing}</td>"
            f'<td style="text-align:left"><span class="bar" style="width:{width}px"></span></td><td>{_flag(f.drift)}{rule}</td></tr>'
        )
        if f.n_new_categories:
            new_cats.append(f"<li><b>{html.escape(name)}</b>: {f.out_of_range:.1%} of rows in "
                            f"{f.n_new_categories} categor{'y' if f.n_new_categories == 1 else 'ies'} never seen in "
                            f"training: {html.escape(f.new_categories_text(limit=len(f.new_categories)))}</li>")
    new_section = ("<h2>New categories</h2><ul>" + "".join(new_cats) + "</ul>") if new_cats else ""
    est = r.estimate
    perf = ["<tr><th>metric</th><th>test</th><th>estimated (no labels)</th><th>realised</th><th>error</th></tr>"]
    for k in r.keys:  # the task's figures (binary: accuracy, f1, roc_auc)
        real = None if r.realized is None else r.realized.get(k)
        err = None if r.estimate_error is None else r.estimate_error.get(k)
        perf.append(f"<tr><td>{k}</td><td>{_f(r.test_metrics.get(k))}</td><td>{_f(est.value(k))}</td>"
                    f"<td>{_f(real)}</td><td>{_f(err)}</td></tr>")
    trust = ("<p class='ok'>The estimate is trustworthy: the batch lies where the model was calibrated.</p>"
             if est.trustworthy else
             "<div class='note'><b>The estimate cannot be trusted:</b><ul>"
             + "".join(f"<li>{html.escape(x)}</li>" for x in est.reasons) + "</ul></div>")
    label = ""
    if r.label is not None and "positive_rate_ref" not in r.label:  # multiclass, regression
        from core.monitoring.drift_report import label_text

        label = f"<h2>Label drift</h2><p>{html.escape(label_text(r))}</p>"
    elif r.label is not None:
        label = (f"<h2>Label drift</h2><p>Positive rate {r.label['positive_rate_ref']:.3f} (training) → "
                 f"{r.label['positive_rate_batch']:.3f} (batch, {r.label['n_labelled']:,} labelled rows); "
                 f"JS distance {_f(r.label['js'])}: {_flag(r.label['drift'])}</p>")
    p = r.prediction
    thresholds = ", ".join(f"{k} = {v}" for k, v in t.items())
    defs = "".join(f"<tr><td>{html.escape(name)}</td><td class='def'>{html.escape(text)}</td>"
                   f"<td>{'–' if key is None else html.escape(f'{key} = {t.get(key)}')}</td></tr>"
                   for name, text, key in DEFINITIONS)
    rules = ("<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in r.dataset_drift_rules) + "</ul>"
             if r.dataset_drift_rules else "")
    alarm = r.verdict.get("alarm") if r.verdict else None
    alarm_html = ("<div class='note'><b>Retraining alarm:</b> " + html.escape("; ".join(alarm)) + ".</div>"
                  if alarm else "")
    dom = r.domain
    domain_text = (f"{_f(dom['auc'])} (95 % interval {_f(dom['low'])}–{_f(dom['high'])}, {dom['n_rows']:,} rows a "
                   f"side, {dom['folds']} folds)" if dom else _f(r.domain_auc))
    charts = "".join(svg.distribution(r.stats.features[name]) for name in order)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift report – {html.escape(r.batch['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>Drift report: {html.escape(r.batch['name'])}</h1>
<p>{r.batch['n_rows']:,} rows ({r.batch['n_labelled']:,} labelled), checked {html.escape(r.checked_at)} against
model version {html.escape(r.model_version)}; SHA-256 {html.escape(r.batch['digest'])}; MLflow run {html.escape(str(r.mlflow_run_id))}.</p>
<h2>Verdict: {'dataset drift' if r.dataset_drift else 'no dataset drift'}</h2>{rules}
<p>{r.n_drifted} of {r.n_features} features drifted; domain classifier ROC-AUC {domain_text}.</p>
<p><b>Recommendation:</b> {html.escape(r.recommendation)}</p>{alarm_html}
<div class="charts">{svg.effect_bars(r)}</div>
<h2>Features (worst first)</h2><table><tr><th>feature</th><th>kind</th><th>PSI</th><th>Wasserstein / σ</th><th>JS (beyond chance)</th>
<th>p-value (info)</th><th>outside training range (categorical: unseen categories)</th><th>mean training → batch</th>
<th>missing training → batch</th><th>effect</th><th></th></tr>
{''.join(rows)}</table>{new_section}
<h2>Distributions (training vs batch, worst first)</h2><div class="charts">{charts}{svg.distribution(p, "test split")}</div>
<h2>Prediction drift</h2>{_prediction(r)}{label}
<h2>Model health</h2>{_words(r)}<div class="charts">{svg.performance(r)}</div><table>{''.join(perf)}</table>{trust}
{_calibration(r)}
<h2>Statistics and thresholds</h2><table><tr><th>statistic</th><th>definition</th><th>threshold</th></tr>
{defs}</table><p>All thresholds: {html.escape(thresholds)}</p>
</body></html>"""
