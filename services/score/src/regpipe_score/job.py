"""One scoring run: resolve the input parts, load the verified model, score every part in one
Dask task (row group by row group, so memory stays flat), add up the per-task sums in part
order, and publish the parts with ``manifest.json`` written last."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import posixpath
import time
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import ThreadpoolController, threadpool_limits

from regpipe_common import bundle, publish, storage
from regpipe_common.dask_client import dask_client
from regpipe_common.errors import BundleNotFoundError, DataError, RegpipeError
from regpipe_common.log import event

from .inputs import ScoreInput, resolve_input
from .predictor import Predictor, predictor_for
from .settings import ScoreSettings

log = logging.getLogger(__name__)
FORMAT = "regpipe-scores/1"
PREDICTION = "prediction"
RESIDUAL = "residual"
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class Plan:
    """What every task needs: the columns, the predictor and the missing-row policy."""

    features: list[str]
    target: str | None
    key: list[str]
    predictor: Predictor
    on_missing: str
    target_center: float  # sums of y are taken around it (train's mean, as train does)


def model_version_url(model: str) -> str:
    """``<models>/<name>@<version>`` → the version folder; ``<models>/<name>`` as is."""
    head, _, last = model.rstrip("/").rpartition("/")
    if "@" not in last:
        return model
    name, _, version = last.rpartition("@")
    if not name or not version or "/" in version or version.startswith("."):
        raise RegpipeError(f"--model {model}: expected <models>/<name>@<version>")
    url = storage.join(head, name, version) if head else posixpath.join(name, version)
    if not storage.exists(storage.join(url, bundle.METADATA_FILE)):
        raise BundleNotFoundError(
            f"--model {model}: version {version} of {name} not found at {url}"
        )
    return url


def run(settings: ScoreSettings) -> dict[str, Any]:
    """Score and publish; raise a ``RegpipeError`` (nothing published) on bad input."""
    source = resolve_input(settings.input)
    if not source.parts:
        raise DataError(f"{settings.input}: the split has no rows to score")
    loaded = bundle.load_bundle(model_version_url(settings.model))
    plan = _plan(settings, source, loaded)
    event(log, "scoring", input=source.url, parts=len(source.parts), model=loaded.url)
    with publish.staging_folder(settings.output) as staging:
        results = _score_all(source.parts, staging, plan)
        manifest = build_manifest(settings, source, loaded, plan, results)
        publish.publish_folder(staging, settings.output, manifest)
    event(log, "published", output=settings.output, rows_scored=manifest["rows_scored"])
    return manifest


def _plan(settings: ScoreSettings, source: ScoreInput, loaded: bundle.Bundle) -> Plan:
    first = source.parts[0]
    names = set(_schema(first).names)
    _require(first, loaded.features, names, "the model's feature")
    if settings.key:
        _require(first, list(settings.key), names, "--key")
        key = list(settings.key)
    else:
        key = [c for c in source.spec_key if c in names]
        if key != source.spec_key:
            event(
                log,
                "the parts lack the spec's row key; output rows follow input order",
                spec_key=",".join(source.spec_key),
            )
            key = []
    target = str(loaded.metadata["target"])
    clash = {PREDICTION, RESIDUAL} & set(key)
    if clash:
        raise DataError(f"--key {', '.join(sorted(clash))}: the output names that column itself")
    return Plan(
        features=loaded.features,
        target=target if target in names else None,
        key=key,
        predictor=predictor_for(loaded.model),
        on_missing=settings.on_missing,
        target_center=float((loaded.metadata.get("target_stats") or {}).get("mean", 0.0)),
    )


def _schema(url: str) -> pa.Schema:
    fs, path = storage.filesystem(url)
    try:
        return pq.read_schema(path, filesystem=fs)
    except FileNotFoundError:
        raise DataError(f"{url}: partition listed in the manifest not found") from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{url}: not a readable Parquet file ({exc})") from None


def _require(url: str, columns: list[str], names: set[str], what: str) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(f"{url}: {what} column(s) {', '.join(missing)} missing")


def _score_all(parts: list[str], staging: str, plan: Plan) -> list[dict[str, Any]]:
    # One task per part beside the driver: a multi-threaded BLAS on top only thrashes.
    with threadpool_limits(limits=1, user_api="blas"), dask_client() as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        futures = [
            client.submit(score_part, i, url, staging, plan, pure=False)
            for i, url in enumerate(parts)
        ]
        try:
            results = client.gather(futures)
        except BaseException:
            client.cancel(futures)
            raise
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rows = sum(r["rows_read"] for r in results)
    # CPU seconds of this process: all of an in-process cluster's work, none of remote workers'.
    timing = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3)}
    event(log, "scored", rows_read=rows, rows_per_s=round(rows / seconds), **timing)
    return results


def score_part(index: int, url: str, staging: str, plan: Plan) -> dict[str, Any]:
    """Score one Parquet part into ``<staging>/part-<index>.parquet``; return its sums."""
    with _blas_controller().limit(limits=1, user_api="blas"):  # also in worker processes
        return _score_part(index, url, staging, plan)


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Made once per process: making one scans the loaded libraries (ms per task)."""
    return ThreadpoolController()


def _score_part(index: int, url: str, staging: str, plan: Plan) -> dict[str, Any]:
    fs, path = storage.filesystem(url)
    try:
        parquet = pq.ParquetFile(path, filesystem=fs)
    except FileNotFoundError:
        raise DataError(f"{url}: partition listed in the manifest not found") from None
    columns = list(dict.fromkeys([*plan.key, *plan.features, *_optional(plan.target)]))
    _require(url, columns, set(parquet.schema_arrow.names), "input")
    out_name = f"part-{index:05d}.parquet"
    sums = _Sums()
    writer: pq.ParquetWriter | None = None
    out_fs, out_path = storage.filesystem(storage.join(staging, out_name))
    with out_fs.open(out_path, "wb") as handle:
        offset = 0
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=columns)
            scored = _score_table(table, offset, url, plan, sums)
            offset += table.num_rows
            if writer is None:
                # Dictionary pages only for the keys: on float columns pyarrow tries them,
                # gives up, and that costs 25x the write itself.
                writer = pq.ParquetWriter(
                    handle, scored.schema, compression="snappy", use_dictionary=plan.key
                )
            writer.write_table(scored)
        if writer is not None:
            writer.close()
    return {"path": out_name, "input": url, **sums.as_dict()}


def _optional(name: str | None) -> list[str]:
    return [] if name is None else [name]


class _Sums:
    """Counts and sums of one task; the driver adds them up in part order."""

    def __init__(self) -> None:
        self.rows_read = self.rows_scored = self.rows_rejected = self.rows_target = 0
        self.sse = self.sae = self.sum_y = self.sum_y2 = 0.0
        self.examples: list[dict[str, Any]] = []

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _score_table(table: pa.Table, offset: int, url: str, plan: Plan, sums: _Sums) -> pa.Table:
    x = np.empty((table.num_rows, len(plan.features)))
    for j, name in enumerate(plan.features):
        x[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    sums.rows_read += table.num_rows
    finite = np.isfinite(x)
    ok = finite.all(axis=1)
    if not ok.all():
        _reject(finite, ok, offset, url, plan, sums)
        x = x[ok]
        table = table.filter(pa.array(ok))
    prediction = plan.predictor.predict(x)
    sums.rows_scored += len(prediction)
    out = {c: table.column(c) for c in plan.key}
    out[PREDICTION] = prediction
    if plan.target is not None:
        y = table.column(plan.target).to_numpy(zero_copy_only=False).astype(np.float64)
        residual = y - prediction
        out[plan.target] = y
        out[RESIDUAL] = residual
        _add_metric_sums(y, residual, plan.target_center, sums)
    return pa.table(out)


def _reject(
    finite: np.ndarray, ok: np.ndarray, offset: int, url: str, plan: Plan, sums: _Sums
) -> None:
    bad_rows = np.flatnonzero(~ok)
    first = [(int(r), int(np.flatnonzero(~finite[r])[0])) for r in bad_rows[:MAX_EXAMPLES]]
    if plan.on_missing == "fail":
        row, col = first[0]
        raise DataError(
            f"{url}: row {offset + row}: feature {plan.features[col]!r} is missing or not "
            "finite (--on-missing fail)"
        )
    sums.rows_rejected += len(bad_rows)
    room = MAX_EXAMPLES - len(sums.examples)
    sums.examples += [
        {"file": url, "row": offset + r, "column": plan.features[c], "reason": "missing"}
        for r, c in first[:room]
    ]


def _add_metric_sums(y: np.ndarray, residual: np.ndarray, center: float, sums: _Sums) -> None:
    has_y = np.isfinite(y)
    if not has_y.all():
        y, residual = y[has_y], residual[has_y]
    yc = y - center
    sums.rows_target += len(y)
    sums.sse += float(residual @ residual)
    sums.sae += float(np.abs(residual).sum())
    sums.sum_y += float(yc.sum())
    sums.sum_y2 += float(yc @ yc)


def metrics(results: list[dict[str, Any]]) -> dict[str, float | int]:
    """RMSE, MAE, R² and row count over the rows with a target (train's formulas)."""
    rows = sum(r["rows_target"] for r in results)
    sse = sum(r["sse"] for r in results)
    sae = sum(r["sae"] for r in results)
    sum_y = sum(r["sum_y"] for r in results)
    total = sum(r["sum_y2"] for r in results) - sum_y * sum_y / rows if rows else 0.0
    return {
        "rmse": float(np.sqrt(sse / rows)) if rows else float("nan"),
        "mae": sae / rows if rows else float("nan"),
        "r2": 1.0 - sse / total if total > 0 else float("nan"),
        "rows": rows,
    }


def build_manifest(
    settings: ScoreSettings,
    source: ScoreInput,
    loaded: bundle.Bundle,
    plan: Plan,
    results: list[dict[str, Any]],
) -> dict[str, Any]:
    """The scored dataset's manifest (docs/contracts.md)."""
    examples = [e for r in results for e in r["examples"]][:MAX_EXAMPLES]
    doc: dict[str, Any] = {
        "format": FORMAT,
        "input": source.url,
        "input_fingerprint": source.fingerprint,
        "dataset_fingerprint": source.dataset_fingerprint,
        "split": source.split,
        "model": {"name": loaded.name, "version": loaded.version},
        "rows_read": sum(r["rows_read"] for r in results),
        "rows_scored": sum(r["rows_scored"] for r in results),
        "rows_rejected": sum(r["rows_rejected"] for r in results),
        "on_missing": plan.on_missing,
        "rejected_examples": examples,
        "key": plan.key,
        "target": plan.target,
        "columns": [*plan.key, PREDICTION, *([plan.target, RESIDUAL] if plan.target else [])],
        "parts": [{"path": r["path"], "rows": r["rows_scored"]} for r in results],
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if plan.target is not None:
        doc["metrics"] = metrics(results)
    return doc


def report(manifest: dict[str, Any], out: TextIO) -> None:
    """A short human-readable summary of the run."""
    model = manifest["model"]
    lines = [
        f"scored {manifest['rows_scored']} of {manifest['rows_read']} rows "
        f"({manifest['rows_rejected']} rejected) with {model['name']}/{model['version']}",
    ]
    if "metrics" in manifest:
        m = manifest["metrics"]
        lines.append(
            f"  rmse {m['rmse']:.6g}  mae {m['mae']:.6g}  r2 {m['r2']:.6f}  rows {m['rows']}"
        )
    out.write("\n".join(lines) + "\n")
