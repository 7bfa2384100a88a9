"""The training report: ``report.html`` (one self-contained page) and its PNG charts.

Everything on the page comes from the bundle's metadata and a sample of the test split; the
charts are matplotlib PNGs (Agg backend) embedded as ``data:`` URIs and also written beside
the page. The page fetches nothing (its Content-Security-Policy forbids it), so it opens
offline, from an artifact, or from the predict service's ``GET /model/report``.

``python -m regpipe_train.report MODEL_OR_VERSION_URL`` prints a Markdown summary (metrics
table and the charts) for a CI job summary.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import sys
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from regpipe_common import registry, storage
from regpipe_common.bundle import REPORT_CSP, REPORT_FILE, read_metadata

CHARTS = {
    "learning_curve.png": "Learning curve",
    "predicted_vs_actual.png": "Predicted vs actual (test sample)",
    "residuals.png": "Residuals (test sample)",
    "coefficients.png": "Coefficients (effect of one standard deviation)",
}


def fmt(value: Any) -> str:
    """How every number appears on the page and in the summary."""
    if value is None:
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


# --- charts -------------------------------------------------------------------------------------


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def learning_curve(meta: dict[str, Any]) -> bytes:
    params = meta["params"]
    history = [h for h in params.get("history", []) if h.get("validation_r2") is not None]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(
        [h["epoch"] for h in history],
        [h["validation_r2"] for h in history],
        "o-",
        label="validation R²",
    )
    if meta["optimum"]["r2"] is not None:  # None: skipped (a design too wide)
        ax.axhline(
            meta["optimum"]["r2"], color="tab:green", ls="--", label="exact optimum (test R²)"
        )
    best = params.get("best_epoch")
    if best:
        ax.axvline(best, color="tab:red", ls=":", label=f"chosen epoch {best}")
    ax.set_xlim(0.5, max([h["epoch"] for h in history] + [1]) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("R²")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, target: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter(actual, predicted, s=4, alpha=0.35, color="tab:blue", rasterized=True)
    if len(actual):
        lo, hi = (
            float(min(actual.min(), predicted.min())),
            float(max(actual.max(), predicted.max())),
        )
        ax.plot([lo, hi], [lo, hi], color="tab:red", lw=1, label="predicted = actual")
        ax.legend(loc="upper left")
    ax.set_xlabel(f"actual {target}")
    ax.set_ylabel(f"predicted {target}")
    ax.set_title(f"{len(actual):,} test rows")
    ax.grid(alpha=0.3)
    return _png(fig)


def residuals(actual: np.ndarray, predicted: np.ndarray) -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.hist(actual - predicted, bins=60, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="tab:red", lw=1)
    ax.set_xlabel("actual - predicted")
    ax.set_ylabel("rows")
    ax.grid(alpha=0.3)
    return _png(fig)


def coefficient_chart(meta: dict[str, Any]) -> bytes:
    rows = meta["coefficients"]["features"][:25][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.3 * max(len(rows), 3)))
    colors = ["tab:blue" if r["per_std"] >= 0 else "tab:orange" for r in rows]
    ax.barh([r["feature"] for r in rows], [r["per_std"] for r in rows], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"change of {meta['target']} per standard deviation of the feature")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def charts(meta: dict[str, Any], actual: np.ndarray, predicted: np.ndarray) -> dict[str, bytes]:
    """The report's PNGs, by file name."""
    return {
        "learning_curve.png": learning_curve(meta),
        "predicted_vs_actual.png": predicted_vs_actual(actual, predicted, meta["target"]),
        "residuals.png": residuals(actual, predicted),
        "coefficients.png": coefficient_chart(meta),
    }


# --- the page -----------------------------------------------------------------------------------


def _cell(value: Any, key: str | None = None) -> str:
    attr = f' data-key="{html.escape(key)}"' if key else ""
    return f"<td{attr}>{html.escape(fmt(value))}</td>"


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def metrics_section(meta: dict[str, Any]) -> str:
    m, o, p = meta["metrics"], meta["optimum"], meta.get("promotion") or {}
    current = p.get("current_metrics")
    head = ["metric", "this model", "exact optimum", "gap"]
    if current:
        head.append(f"current LATEST {p['current_version']}")
    rows = []
    for key, gap in (("r2", o.get("gap_r2")), ("rmse", o.get("gap_rmse")), ("mae", None)):
        cells = [
            _cell(key.upper() if key != "r2" else "R²"),
            _cell(m[key], f"metrics.{key}"),
            _cell(o.get(key), f"optimum.{key}"),
            _cell(gap, f"optimum.gap_{key}" if gap is not None else None),
        ]
        if current:
            cells.append(_cell(current[key], f"promotion.current_metrics.{key}"))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    how = f"by {o.get('method', '?')}" if "skipped" not in o else f"skipped: {o['skipped']}"
    note = f"<p>{fmt(m['rows'])} test rows; optimum {html.escape(how)}.</p>"
    return "<h2>Test metrics</h2>" + _table(head, rows) + note


def promotion_section(meta: dict[str, Any]) -> str:
    p = meta.get("promotion")
    if not p:
        return ""
    verdict = "promoted" if p["promoted"] else "NOT promoted"
    css = "ok" if p["promoted"] else "bad"
    return (
        f'<div class="decision {css}"><b data-key="promotion.promoted">{verdict}</b>: '
        f"{html.escape(p['reason'])}</div>"
    )


def coefficients_section(meta: dict[str, Any]) -> str:
    coef = meta["coefficients"]
    rows = [
        "<tr>"
        + _cell(r["feature"])
        + _cell(r["per_unit"], "coef." + r["feature"])
        + _cell(r["per_std"])
        + "</tr>"
        for r in coef["features"]
    ]
    intercept = _cell(coef["intercept"], "coef.intercept")
    rows.append(f"<tr>{_cell('(intercept)')}{intercept}<td></td></tr>")
    head = ["feature", f"{meta['target']} per unit of the feature", "per standard deviation"]
    return "<h2>Coefficients (original units, largest effect first)</h2>" + _table(head, rows)


def data_section(meta: dict[str, Any]) -> str:
    counts = meta.get("dataset_counts") or {}
    labels = {
        "read": "rows read",
        "rejected": "rejected (malformed)",
        "dropped_missing": "dropped (missing values)",
        "train": "train",
        "test": "test",
    }
    rows = [
        f"<tr>{_cell(label)}{_cell(counts.get(k), f'data.{k}')}</tr>" for k, label in labels.items()
    ]
    source = html.escape(str(meta.get("dataset", "?")))
    fingerprint = html.escape(str(meta.get("dataset_fingerprint", "?"))[:16])
    return f"<h2>Data</h2><p><code>{source}</code> (fingerprint {fingerprint}…)</p>" + _table(
        ["", "rows"], rows
    )


def params_section(meta: dict[str, Any]) -> str:
    p = meta["params"]
    keys = ["epochs_run", "best_epoch", "stopped_early", "batch_size", "eta0", "alpha", "seed"]
    rows = [f"<tr>{_cell(k)}{_cell(p.get(k))}</tr>" for k in keys if k in p]
    pre = p.get("preconditioning")
    if pre:
        rows.append(f"<tr>{_cell('SGD fitted on')}{_cell(fitted_on(pre))}</tr>")
    return "<h2>Training</h2>" + _table(["parameter", "value"], rows)


def fitted_on(pre: dict[str, Any]) -> str:
    """What SGD was fitted on, from the metadata's ``params.preconditioning``."""
    if pre["method"] == "whitened":
        return f"whitened design (rank {pre['rank']} of {pre['columns']} columns)"
    return f"sparse design, not whitened ({pre.get('reason')})"


def _figure(file_name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    title = html.escape(CHARTS[file_name])
    return (
        f'<figure><img alt="{title}" src="data:image/png;base64,{data}">'
        f"<figcaption>{title}</figcaption></figure>"
    )


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1300px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.4em}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.3em .8em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
.decision{padding:.7em 1em;border-radius:6px;margin:1em 0}
.ok{background:#e7f6e7;border:1px solid #7c7}.bad{background:#fdeaea;border:1px solid #d77}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1em}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:2em}
figure{margin:0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
"""


def render_html(meta: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """The self-contained page: metadata numbers, decision, tables and embedded charts."""
    title = f"{meta['name']} {meta['version']}"
    figures = "".join(_figure(name, pngs[name]) for name in CHARTS if name in pngs)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">'
        f"<title>regpipe model {html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>Model <span data-key="name">{html.escape(meta["name"])}</span></h1>'
        f'<p class="sub">version <code data-key="version">{html.escape(meta["version"])}</code>'
        f" · predicts <b>{html.escape(meta['target'])}</b> from {len(meta['features'])} features"
        f" · report written {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}</p>"
        + promotion_section(meta)
        + metrics_section(meta)
        + f'<h2>Charts</h2><div class="grid">{figures}</div>'
        + '<div class="cols"><div>'
        + coefficients_section(meta)
        + "</div><div>"
        + data_section(meta)
        + params_section(meta)
        + "</div></div></body></html>\n"
    )


def build(meta: dict[str, Any], actual: np.ndarray, predicted: np.ndarray) -> dict[str, bytes]:
    """``report.html`` and the PNGs, by file name, ready to go into the bundle."""
    pngs = charts(meta, actual, predicted)
    return {REPORT_FILE: render_html(meta, pngs).encode("utf-8"), **pngs}


# --- CI job summary -----------------------------------------------------------------------------


def summary_markdown(url: str) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: a model folder's newest version, or a version."""
    if not storage.exists(storage.join(url, "metadata.json")):
        versions = registry.version_names(url)
        if not versions:
            raise SystemExit(f"no model version under {url}")
        url = storage.join(url, versions[-1])
    meta = read_metadata(url)
    m, o = meta["metrics"], meta["optimum"]
    p = meta.get("promotion") or {}
    lines = [
        f"### model {meta['name']} {meta['version']}",
        "",
        f"**{'promoted' if p.get('promoted', True) else 'NOT promoted'}**: "
        f"{p.get('reason', 'no promotion gate')}",
        "",
        "| metric | this model | exact optimum | current LATEST |",
        "|---|---:|---:|---:|",
    ]
    current = p.get("current_metrics") or {}
    for key in ("r2", "rmse", "mae"):
        lines.append(f"| {key} | {fmt(m[key])} | {fmt(o.get(key))} | {fmt(current.get(key))} |")
    lines.append("")
    for name, title in CHARTS.items():
        try:
            data = base64.b64encode(storage.read_bytes(storage.join(url, name))).decode("ascii")
        except FileNotFoundError:
            continue
        lines.append(f'<img alt="{title}" width="480" src="data:image/png;base64,{data}">')
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m regpipe_train.report MODEL_OR_VERSION_URL", file=sys.stderr)
        return 2
    sys.stdout.write(summary_markdown(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
