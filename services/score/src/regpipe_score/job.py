"""One scoring run: resolve the input (a prepared split's parts, or raw files cut into units),
load the verified model, score every part or unit in one Dask task (batch by batch, so memory
stays flat), add up the per-task sums in task order, and publish the parts, the rejected rows
and ``manifest.json`` written last."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import posixpath
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import as_completed
from threadpoolctl import ThreadpoolController, threadpool_limits

from regpipe_common import bundle, publish, storage
from regpipe_common.dask_client import dask_client
from regpipe_common.dataset import REJECTED
from regpipe_common.errors import BundleNotFoundError, DataError, RegpipeError
from regpipe_common.ingest.sources import Unit
from regpipe_common.log import event
from regpipe_common.spec import MISSING_LEVEL, DatasetSpec

from .batches import Batch, batches, first_row_of_file, item_file
from .inputs import RawInput, ScoreInput, resolve_input, resolve_raw
from .predictor import Predictor, predictor_for
from .settings import ScoreSettings

log = logging.getLogger(__name__)
FORMAT = "regpipe-scores/1"
PREDICTION = "prediction"
RESIDUAL = "residual"
MAX_EXAMPLES = 20  # rejected rows listed in the manifest
# Rejected rows listed in rejected/rejected.jsonl, per task and kind (malformed, missing): the
# malformed ones as preprocess lists them, however many rows miss a feature.
MAX_RECORDS_KEPT = 1000


@dataclass(frozen=True)
class Plan:
    """What every task needs: the columns, the predictor and the missing-row policy."""

    features: list[str]
    categories: list[str]  # the category features (levels as strings)
    target: str | None
    key: list[str]
    predictor: Predictor
    on_missing: str
    target_center: float  # sums of y are taken around it (train's mean, as train does)
    spec: DatasetSpec | None = None  # raw input: parsed and checked against it
    headers: dict[str, list[str]] = field(default_factory=dict)  # raw input: CSV headers

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys([*self.key, *self.features, *_optional(self.target)]))

    @property
    def row_field(self) -> str:
        """How a rejected row is located: 0-based ``row`` (prepared), ``line`` (raw)."""
        return "row" if self.spec is None else "line"

    def missing_is_level(self, feature: str) -> bool:
        return self.spec is not None and self.spec.column(feature).missing_is_level


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
    source = resolve_raw(settings.input, settings.spec) if settings.spec else None
    prepared = None if source else resolve_input(settings.input)
    items: list[str | Unit] = list(source.units if source else prepared.parts)
    if not items:
        raise DataError(f"{settings.input}: the split has no rows to score")
    loaded = bundle.load_bundle(model_version_url(settings.model))
    plan = _plan(settings, prepared, source, loaded)
    event(log, "scoring", input=settings.input, tasks=len(items), model=loaded.url)
    with publish.staging_folder(settings.output) as staging:
        results = _score_all(items, staging, plan)
        examples = None
        if any(r["records"] for r in results):
            examples = _write_rejected(staging, results, plan.row_field)
        manifest = build_manifest(settings, prepared or source, loaded, plan, results, examples)
        publish.publish_folder(staging, settings.output, manifest)
    event(log, "published", output=settings.output, rows_scored=manifest["rows_scored"])
    return manifest


def _plan(
    settings: ScoreSettings,
    prepared: ScoreInput | None,
    raw: RawInput | None,
    loaded: bundle.Bundle,
) -> Plan:
    if raw is not None:
        where, names, spec_key = raw.url, raw.spec.column_names, list(raw.spec.key)
        _check_spec_types(raw.spec, loaded)
    else:
        assert prepared is not None
        where, spec_key = prepared.parts[0], prepared.spec_key
        names = _schema(where).names
    _require(where, loaded.features, set(names), "the model's feature")
    key = _key(settings, where, set(names), spec_key)
    target = str(loaded.metadata["target"])
    return Plan(
        features=loaded.features,
        categories=list(bundle.category_levels(loaded.metadata)),
        target=target if target in names else None,
        key=key,
        predictor=predictor_for(loaded.model),
        on_missing=settings.on_missing,
        target_center=float((loaded.metadata.get("target_stats") or {}).get("mean", 0.0)),
        spec=raw.spec if raw else None,
        headers=raw.headers if raw else {},
    )


def _key(settings: ScoreSettings, where: str, names: set[str], spec_key: list[str]) -> list[str]:
    """``--key``, each column required; else the spec's row key when the input holds it."""
    if settings.key:
        _require(where, list(settings.key), names, "--key")
        key = list(settings.key)
    else:
        key = [c for c in spec_key if c in names]
        if key != spec_key:
            event(
                log,
                "the parts lack the spec's row key; output rows follow input order",
                spec_key=",".join(spec_key),
            )
            key = []
    clash = {PREDICTION, RESIDUAL} & set(key)
    if clash:
        raise DataError(f"--key {', '.join(sorted(clash))}: the output names that column itself")
    return key


def _check_spec_types(spec: DatasetSpec, loaded: bundle.Bundle) -> None:
    """Raw input: the spec must type each model feature as the model takes it."""
    categories = set(bundle.category_levels(loaded.metadata))
    for feature in loaded.features:
        if feature not in spec.column_names:
            continue  # reported by _require, naming every missing one
        column = spec.column(feature)
        takes_levels = feature in categories
        if (column.type in ("category", "string")) if takes_levels else column.numeric:
            continue
        wanted = "category" if takes_levels else "int or float"
        raise DataError(
            f"{spec.source}: column {feature!r} is {column.type}; the model takes it as {wanted}"
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


def _score_all(items: list[str | Unit], staging: str, plan: Plan) -> list[dict[str, Any]]:
    # One task per part or unit beside the driver: a multi-threaded BLAS on top only thrashes.
    with threadpool_limits(limits=1, user_api="blas"), dask_client() as client:
        started, cpu_started = time.perf_counter(), time.process_time()
        futures = [
            client.submit(score_part, i, item, staging, plan, pure=False)
            for i, item in enumerate(items)
        ]
        try:
            results = sorted(_gather(futures), key=lambda r: r["index"])
        except BaseException:
            client.cancel(futures)
            raise
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    rows = sum(r["rows_read"] for r in results)
    # CPU seconds of this process: all of an in-process cluster's work, none of remote workers'.
    timing = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3)}
    event(log, "scored", rows_read=rows, rows_per_s=round(rows / seconds), **timing)
    return results


def _gather(futures: list[Any]) -> Iterator[dict[str, Any]]:
    """The tasks' results as they complete; the first task that met bad input stops the run."""
    for future in as_completed(futures):
        result = future.result()
        if "error" in result:
            raise DataError(result["error"])
        yield result


def score_part(index: int, item: str | Unit, staging: str, plan: Plan) -> dict[str, Any]:
    """Score one prepared part or raw unit into ``<staging>/part-<index>.parquet`` (written
    only when a row is scored); return its counts and sums, or ``{"error": message}`` for bad
    input (returned, not raised: a raised one puts a traceback in the worker's log)."""
    with _blas_controller().limit(limits=1, user_api="blas"):  # also in worker processes
        try:
            return _score_part(index, item, staging, plan)
        except RegpipeError as exc:
            return {"index": index, "error": str(exc)}


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """Made once per process: making one scans the loaded libraries (ms per task)."""
    return ThreadpoolController()


def _score_part(index: int, item: str | Unit, staging: str, plan: Plan) -> dict[str, Any]:
    sums = _Sums(item_file(item))
    out = _PartWriter(storage.join(staging, f"part-{index:05d}.parquet"), plan.key)
    try:
        for batch in batches(item, plan.columns, plan.spec, plan.headers):
            sums.rows_read += batch.rows_read
            sums.lines += batch.lines
            sums.rows_malformed += len(batch.malformed)
            sums.keep(sums.malformed, batch.malformed)
            out.write(_score_batch(batch, item, plan, sums))
    finally:
        out.close()
    path = posixpath.basename(out.url) if out.opened else None
    return {"index": index, "path": path, **sums.as_dict(staging, index, plan.row_field)}


def _optional(name: str | None) -> list[str]:
    return [] if name is None else [name]


class _PartWriter:
    """Opens its Parquet file on the first non-empty table."""

    def __init__(self, url: str, key: list[str]):
        self.url, self.key = url, key
        self.writer: pq.ParquetWriter | None = None
        self.handle: Any = None

    @property
    def opened(self) -> bool:
        return self.writer is not None

    def write(self, table: pa.Table | None) -> None:
        if table is None or table.num_rows == 0:
            return
        if self.writer is None:
            fs, path = storage.filesystem(self.url)
            self.handle = fs.open(path, "wb")
            # Dictionary pages only for the keys: on float columns pyarrow tries them,
            # gives up, and that costs 25x the write itself.
            self.writer = pq.ParquetWriter(
                self.handle, table.schema, compression="snappy", use_dictionary=self.key
            )
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.handle.close()


class _Sums:
    """Counts and sums of one task; the driver adds them up in task order."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.rows_read = self.rows_scored = self.rows_malformed = self.rows_missing = 0
        self.rows_target = self.lines = 0
        self.sse = self.sae = self.sum_y = self.sum_y2 = 0.0
        # The first rejected rows of each kind, numbered in the task.
        self.malformed: list[dict[str, Any]] = []
        self.missing: list[dict[str, Any]] = []

    @property
    def rows_rejected(self) -> int:
        return self.rows_malformed + self.rows_missing

    @staticmethod
    def keep(kept: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
        kept += records[: MAX_RECORDS_KEPT - len(kept)]

    def as_dict(self, staging: str, index: int, row_field: str) -> dict[str, Any]:
        """What goes back to the driver: the counts, the sums and the first rejected rows; all
        the kept ones are staged in a file (memory stays flat however many tasks there are)."""
        records = sorted(self.malformed + self.missing, key=lambda r: r[row_field])
        if records:
            text = "".join(json.dumps(r) + "\n" for r in records)
            storage.write_text_atomic(_records_url(staging, index), text)
        counts = {k: v for k, v in vars(self).items() if k not in ("malformed", "missing")}
        return {
            **counts,
            "records": len(records),
            "examples": records[:MAX_EXAMPLES],
            "rows_rejected": self.rows_rejected,
        }


def _records_url(staging: str, index: int) -> str:
    """A task's rejected rows, numbered in the task, until the driver numbers them in order."""
    return storage.join(staging, f".rejected-{index:05d}.jsonl")


def _score_batch(batch: Batch, item: str | Unit, plan: Plan, sums: _Sums) -> pa.Table | None:
    table = batch.table
    x, valid = _features(table, plan)
    ok = valid.all(axis=1)
    if not ok.all():
        _reject_missing(valid, ok, batch.rows, item, plan, sums)
        x = x[ok]
        table = table.filter(pa.array(ok))
    if table.num_rows == 0:
        return None
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


def _features(table: pa.Table, plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """The model's input (float64, or object with levels as str for a category model) and
    which cells hold a value (a finite number, a level)."""
    if not plan.categories:
        x = np.empty((table.num_rows, len(plan.features)))
        for j, name in enumerate(plan.features):
            x[:, j] = table.column(name).to_numpy(zero_copy_only=False)
        return x, np.isfinite(x)
    x = np.empty((table.num_rows, len(plan.features)), dtype=object)
    valid = np.empty(x.shape, dtype=bool)
    for j, name in enumerate(plan.features):
        column = table.column(name)
        if name in plan.categories:
            column = _levels(column, plan.missing_is_level(name))
            valid[:, j] = np.asarray(column.is_valid())
        else:
            column = pc.cast(column, pa.float64())
            valid[:, j] = np.isfinite(column.to_numpy(zero_copy_only=False))
        x[:, j] = column.to_numpy(zero_copy_only=False)
    return x, valid


def _levels(column: pa.ChunkedArray, missing_is_level: bool) -> pa.ChunkedArray:
    """A category column as plain strings; raw input's missing values become ``MISSING_LEVEL``
    where the spec says ``missing: level`` (prepared data holds it already)."""
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, MISSING_LEVEL) if missing_is_level else column


def _reject_missing(
    valid: np.ndarray, ok: np.ndarray, rows: np.ndarray, item: str | Unit, plan: Plan, sums: _Sums
) -> None:
    bad_rows = np.flatnonzero(~ok)
    room = MAX_RECORDS_KEPT - len(sums.missing)
    first = [(int(rows[r]), int(np.flatnonzero(~valid[r])[0])) for r in bad_rows[: max(room, 1)]]
    if plan.on_missing == "fail":
        row, col = first[0]
        where = f"{plan.row_field} {row + first_row_of_file(item)}"
        raise DataError(
            f"{item_file(item)}: {where}: feature {plan.features[col]!r} is missing or not "
            "finite (--on-missing fail)"
        )
    sums.rows_missing += len(bad_rows)
    sums.keep(
        sums.missing, [_missing_record(sums.file, plan, row, col) for row, col in first[:room]]
    )


def _missing_record(file: str, plan: Plan, row: int, col: int) -> dict[str, Any]:
    record = {"file": file, plan.row_field: row, "column": plan.features[col], "reason": "missing"}
    return record if plan.spec is None else {**record, "raw": ""}


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


def _write_rejected(staging: str, results: list[dict[str, Any]], row_field: str) -> list[dict]:
    """Join the tasks' rejected rows into ``rejected/rejected.jsonl``, numbered in their file
    (a task's rows follow the earlier tasks' rows of the same file, as preprocess numbers
    them), one task's file at a time; return the first ``MAX_EXAMPLES``, numbered alike."""
    before: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    fs, path = storage.filesystem(storage.join(staging, REJECTED))
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    with fs.open(path, "w") as out:
        for result in results:
            base = before.get(result["file"], 0)
            before[result["file"]] = base + result["lines"]
            if not result["records"]:
                continue
            room = MAX_EXAMPLES - len(examples)
            examples += [_shifted(r, row_field, base) for r in result["examples"][:room]]
            task_fs, task_path = storage.filesystem(_records_url(staging, result["index"]))
            with task_fs.open(task_path, "r") as lines:
                for line in lines:
                    out.write(json.dumps(_shifted(json.loads(line), row_field, base)) + "\n")
            task_fs.rm(task_path)
    return examples


def _shifted(record: dict[str, Any], row_field: str, base: int) -> dict[str, Any]:
    return {**record, row_field: record[row_field] + base}


def build_manifest(
    settings: ScoreSettings,
    source: ScoreInput | RawInput,
    loaded: bundle.Bundle,
    plan: Plan,
    results: list[dict[str, Any]],
    examples: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The scored dataset's manifest (docs/contracts.md)."""
    prepared = isinstance(source, ScoreInput)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "input": source.url,
        "input_fingerprint": source.fingerprint,
        "dataset_fingerprint": source.dataset_fingerprint if prepared else None,
        "split": source.split if prepared else None,
        "spec": None if prepared else source.spec.to_dict(),
        "model": {"name": loaded.name, "version": loaded.version},
        **{
            name: sum(r[name] for r in results)
            for name in ("rows_read", "rows_scored", "rows_rejected")
        },
        "rows_malformed": sum(r["rows_malformed"] for r in results),
        "rows_missing": sum(r["rows_missing"] for r in results),
        "on_missing": plan.on_missing,
        "rejected": REJECTED if examples is not None else None,
        "rejected_examples": [{k: v for k, v in r.items() if k != "raw"} for r in examples or []],
        "key": plan.key,
        "target": plan.target,
        "columns": [*plan.key, PREDICTION, *([plan.target, RESIDUAL] if plan.target else [])],
        "parts": [{"path": r["path"], "rows": r["rows_scored"]} for r in results if r["path"]],
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
