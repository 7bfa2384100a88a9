"""One training run: manifest → SGD epochs (checkpointed) → test metrics of the new model, the
exact optimum and the current ``LATEST`` model in one pass → the promotion gate → a published
model bundle with its ``report.html`` (``LATEST`` moved only if promoted) → a short printed
report."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from regpipe_common import bundle, storage
from regpipe_common.dask_client import dask_client
from regpipe_common.log import event
from regpipe_common.pushgateway import bundle_metrics, pushes_run_metrics

from . import checkpoint, gate
from . import report as html_report
from .dataset import Dataset, load_dataset
from .evaluate import Evaluation, Models, evaluate
from .exact import Optimum, solve
from .fit import FitState, fit, new_sgd, preconditioning
from .model import build_pipeline, description
from .settings import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    version: str
    metadata: dict[str, Any]
    report_url: str

    @property
    def promoted(self) -> bool:
        return bool(self.metadata["promotion"]["promoted"])


@pushes_run_metrics("regpipe-train", lambda result: bundle_metrics(result.metadata))
def run(settings: TrainSettings) -> TrainResult:
    """Train, evaluate and publish; raise a ``RegpipeError`` (nothing published) on bad input."""
    dataset = load_dataset(settings.data)
    ckpt_url = checkpoint.checkpoint_url(settings, dataset.fingerprint)
    state = _initial_state(settings, ckpt_url)
    event(
        log,
        "training",
        data=settings.data,
        parts=len(dataset.train),
        rows=dataset.train_rows,
        start_epoch=state.epochs_done + 1,
        epochs=settings.epochs,
    )
    # Parallelism comes from Dask tasks beside the driver's SGD loop: a multi-threaded BLAS on
    # top of that only thrashes (a 1 ms XᵀX took up to 80 ms on 2 busy cores).
    with threadpool_limits(limits=1, user_api="blas"), dask_client() as client:
        state = fit(client, dataset, settings, state, lambda s: checkpoint.save(ckpt_url, s))
        optimum = solve(state.gram, dataset.target_mean) if state.gram is not None else None
        coef, intercept = state.linear()
        current = gate.current_model(settings.models, settings.name, dataset)
        models: Models = {"sgd": (coef, intercept + dataset.target_mean)}
        if optimum is not None:
            models["optimum"] = (optimum.coef, optimum.intercept)
        if current is not None and current.linear is not None:
            models["current"] = current.linear
        evaluation = evaluate(client, dataset, models)
    metrics = evaluation.metrics
    pipeline = build_pipeline(dataset, state.model, coef, intercept)
    metadata = build_metadata(settings, dataset, state, optimum, metrics)
    metadata["coefficients"] = original_units(dataset, coef, intercept + dataset.target_mean)
    metadata["promotion"] = gate.decide(
        metrics["sgd"], current, metrics.get("current"), settings.max_regression, settings.force
    )
    return _publish(settings, pipeline, metadata, evaluation)


def _publish(
    settings: TrainSettings, pipeline: Any, metadata: dict[str, Any], evaluation: Evaluation
) -> TrainResult:
    """Write the report, publish the bundle (LATEST moves only if promoted), drop the checkpoint."""
    version = bundle.new_version()
    files = html_report.build(
        {**metadata, "name": settings.name, "version": version},
        evaluation.actual,
        evaluation.predicted["sgd"],
    )
    promoted = metadata["promotion"]["promoted"]
    event(log, "publishing bundle", models=settings.models, name=settings.name, promote=promoted)
    bundle.publish_bundle(
        settings.models,
        settings.name,
        pipeline,
        metadata,
        version=version,
        files=files,
        promote=promoted,
    )
    checkpoint.remove(checkpoint.checkpoint_url(settings, metadata["dataset_fingerprint"]))
    event(log, "published", name=settings.name, version=version, promoted=promoted)
    return TrainResult(
        version=version,
        metadata={**metadata, "name": settings.name, "version": version},
        report_url=storage.join(settings.models, settings.name, version, bundle.REPORT_FILE),
    )


def original_units(dataset: Dataset, coef: np.ndarray, intercept: float) -> dict[str, Any]:
    """The model's coefficients per unit and per standard deviation of each numeric feature
    and each kept level (``feature=level``: its effect against an unseen or infrequent level),
    largest effect first, and its intercept in the original units."""
    layout = dataset.layout
    p = len(layout.numeric)
    per_unit = coef[:p] / dataset.scale
    rows = [
        {"feature": f, "per_unit": float(u), "per_std": float(s)}
        for f, u, s in zip(layout.numeric, per_unit, coef[:p], strict=True)
    ]
    categories = dataset.manifest.get("categories") or {}
    for offset, (feature, levels) in zip(layout.offsets, layout.categories.items(), strict=True):
        counts, total = categories[feature].get("levels") or {}, categories[feature].get("count")
        for k, level in enumerate(levels):
            share = counts.get(level, 0) / total if total else 0.0
            effect = float(coef[offset + k])
            std = float(np.sqrt(share * (1 - share)))
            rows.append(
                {"feature": f"{feature}={level}", "per_unit": effect, "per_std": effect * std}
            )
    rows.sort(key=lambda r: -abs(r["per_std"]))
    return {"intercept": float(intercept - per_unit @ dataset.mean), "features": rows}


def _initial_state(settings: TrainSettings, ckpt_url: str) -> FitState:
    if settings.resume:
        state = checkpoint.load(ckpt_url)
        if state is not None:
            event(log, "resuming", checkpoint=ckpt_url, epochs_done=state.epochs_done)
            return state
        event(log, "no checkpoint to resume from; starting over", checkpoint=ckpt_url)
    return FitState(sgd=new_sgd(settings))


def build_metadata(
    settings: TrainSettings,
    dataset: Dataset,
    state: FitState,
    optimum: Optimum | None,
    metrics: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """The bundle's metadata (``publish_bundle`` adds name, version, sha256 and the rest)."""
    precond = preconditioning(dataset, state)
    doc = {
        "features": dataset.features,
        "target": dataset.target,
        "metrics": metrics["sgd"],
        "optimum": _optimum(optimum, metrics, precond.get("reason"), dataset.train_rows),
        "params": {
            **settings.training_params(),
            "model": description(dataset),
            "sgd": {k: v for k, v in state.model.get_params().items()},
            "preconditioning": precond,
            "epochs_run": state.epochs_done,
            "best_epoch": state.best_epoch,
            "stopped_early": state.stopped_early,
            "validation_r2": state.best_score if np.isfinite(state.best_score) else None,
            "history": state.history,
        },
        "dataset_fingerprint": dataset.fingerprint,
        "dataset": settings.data,
        "feature_stats": dataset.manifest["features"],
        "target_stats": dataset.manifest["target"],
        "dataset_counts": {
            key: dataset.manifest.get(f"rows_{key}")
            for key in ("read", "rejected", "dropped_missing", "train", "test")
        },
    }
    if dataset.layout.categories:
        doc["categories"] = _categories(dataset)
    return doc


def _optimum(
    optimum: Optimum | None,
    metrics: dict[str, dict[str, float]],
    why_skipped: str | None,
    train_rows: int,
) -> dict[str, Any]:
    """The exact optimum's test metrics and the gap to it, or why it was skipped."""
    sgd_metrics = metrics["sgd"]
    if optimum is None:
        return {
            **{k: None for k in ("rmse", "mae", "r2", "gap_r2", "gap_rmse", "condition_number")},
            "rows": sgd_metrics["rows"],
            "method": "skipped",
            "skipped": why_skipped,
            "train_rows": train_rows,
        }
    best = metrics["optimum"]
    return {
        "rmse": best["rmse"],
        "mae": best["mae"],
        "r2": best["r2"],
        "rows": best["rows"],
        "gap_r2": best["r2"] - sgd_metrics["r2"],
        "gap_rmse": sgd_metrics["rmse"] - best["rmse"],
        "method": optimum.method,
        "condition_number": optimum.condition_number,
        "train_rows": optimum.rows,
    }


def _categories(dataset: Dataset) -> dict[str, dict[str, Any]]:
    """The metadata's ``categories``: each category feature's kept levels (the encoder's
    columns, in order), the train share of other levels, and how a missing value was treated."""
    manifest = dataset.manifest["categories"]
    return {
        feature: {
            "levels": list(levels),
            "infrequent_share": float(manifest[feature].get("infrequent_share", 0.0)),
            "missing": str(manifest[feature].get("missing", "drop")),
        }
        for feature, levels in dataset.layout.categories.items()
    }


def report(result: TrainResult, out: TextIO) -> None:
    """A short human-readable summary of the run."""
    meta = result.metadata
    m, o, p = meta["metrics"], meta["optimum"], meta["params"]
    lines = [
        f"model {meta['name']}/{result.version}  ({p['epochs_run']} epochs, "
        f"best {p['best_epoch']}{', stopped early' if p['stopped_early'] else ''})",
        f"  test    rmse {m['rmse']:.6g}  mae {m['mae']:.6g}  r2 {m['r2']:.6f}  rows {m['rows']}",
        *_optimum_lines(o),
        f"  sgd on  the {html_report.fitted_on(p['preconditioning'])}",
        f"  {'promoted' if result.promoted else 'NOT promoted'}: {meta['promotion']['reason']}",
        f"  report  {result.report_url}",
    ]
    out.write("\n".join(lines) + "\n")


def _optimum_lines(o: dict[str, Any]) -> list[str]:
    if o["r2"] is None:
        return [f"  optimum skipped: {o['skipped']}"]
    return [
        f"  optimum rmse {o['rmse']:.6g}  mae {o['mae']:.6g}  r2 {o['r2']:.6f}  ({o['method']})",
        f"  gap     r2 {o['gap_r2']:.2e}  rmse {o['gap_rmse']:.2e}",
    ]
