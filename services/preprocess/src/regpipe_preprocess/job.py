"""The preprocess job: plan, validate, run every unit on Dask, then publish atomically
(:mod:`regpipe_common.dataset`: a new version folder, the manifest moved last)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time

from distributed import as_completed

from regpipe_common import dataset, publish, storage
from regpipe_common.dask_client import dask_client
from regpipe_common.errors import DataError
from regpipe_common.ingest.read import STREAM_BLOCK_BYTES
from regpipe_common.ingest.sources import Unit, find_inputs, plan_units
from regpipe_common.ingest.validate import validate_file
from regpipe_common.log import event
from regpipe_common.pushgateway import manifest_metrics, pushes_run_metrics
from regpipe_common.spec import DatasetSpec, load_spec

from .settings import Settings
from .stats import LevelCounts, Moments, merge_all, merge_levels
from .unit import JobContext, UnitResult, process_unit

log = logging.getLogger("regpipe.preprocess")

_COUNT_KEYS = ("rows_read", "rows_rejected", "rows_dropped_missing", "rows_train", "rows_test")


@pushes_run_metrics("regpipe-preprocess", manifest_metrics)
def run(settings: Settings) -> dict:
    """Run the whole job; return the published manifest. Raises RegpipeError on bad input."""
    spec = load_spec(settings.spec)
    files = find_inputs(settings.input)
    headers = {f.url: validate_file(f, spec) for f in files}
    units = plan_units(files, settings.blocksize)
    event(
        log, "validated input", files=len(files), units=len(units), bytes=sum(f.size for f in files)
    )
    dataset.remove_stale(settings.output)  # what killed runs left behind
    version_url = dataset.new_version_url(settings.output)
    try:
        ctx = JobContext(
            spec, headers, version_url, settings.seed, settings.test_fraction, STREAM_BLOCK_BYTES
        )
        with dask_client() as client:
            results, levels = _run_units(client, units, ctx, settings.progress_interval)
        rejected = _numbered_rejects(results)
        totals = _totals(results)
        _check(totals, rejected, settings)
        if rejected:
            _write_rejects(version_url, rejected)
        manifest = _manifest(settings, spec, results, totals, bool(rejected))
        manifest.update(_categories(spec, levels))
    except BaseException:
        publish.remove_folder(version_url)
        raise
    manifest = dataset.publish_version(settings.output, version_url, manifest)
    event(log, "published", output=settings.output, **{k: manifest[k] for k in _COUNT_KEYS})
    return manifest


def _run_units(
    client, units: list[Unit], ctx: JobContext, interval: float
) -> tuple[list[UnitResult], dict[str, LevelCounts]]:
    """Every unit's result, and their level counts merged as they arrive (so that memory holds
    one merged count per column, not one per unit)."""
    futures = client.map(process_unit, units, ctx=ctx, pure=False)
    results: list[UnitResult] = []
    levels: dict[str, LevelCounts] = {}
    started = last = time.monotonic()
    rows = 0
    try:
        for future in as_completed(futures):
            result = future.result()
            merge_levels(levels, result.levels)
            result.levels = {}
            results.append(result)
            rows += result.rows_read
            now = time.monotonic()
            if now - last >= interval or len(results) == len(units):
                last = now
                event(
                    log,
                    "progress",
                    units=f"{len(results)}/{len(units)}",
                    rows=rows,
                    rows_per_s=round(rows / max(now - started, 1e-9)),
                )
    except BaseException:
        client.cancel(futures)
        raise
    return sorted(results, key=lambda r: r.index), levels


def _numbered_rejects(results: list[UnitResult]) -> list[dict]:
    """File-absolute line numbers: a unit's lines start after the earlier units' of its file."""
    lines_before: dict[str, int] = {}
    out = []
    for result in results:
        base = lines_before.get(result.file, 0)
        for r in result.rejects:
            out.append(
                {
                    "file": result.file,
                    "line": base + r.line,
                    "column": r.column,
                    "reason": r.reason,
                    "raw": r.raw,
                }
            )
        lines_before[result.file] = base + result.lines
    return out


def _totals(results: list[UnitResult]) -> dict[str, int]:
    return {
        "rows_read": sum(r.rows_read for r in results),
        "rows_rejected": sum(r.rows_rejected for r in results),
        "rows_dropped_missing": sum(r.rows_dropped_missing for r in results),
        "rows_train": sum(r.rows["train"] for r in results),
        "rows_test": sum(r.rows["test"] for r in results),
    }


def _check(totals: dict[str, int], rejected: list[dict], settings: Settings) -> None:
    read, bad = totals["rows_read"], totals["rows_rejected"]
    if read == 0:
        raise DataError(f"input is empty: no data rows in {settings.input}")
    if bad / read > settings.max_rejected_fraction:
        first = rejected[0]
        raise DataError(
            f"{bad} of {read} rows ({bad / read:.2%}) are malformed, above "
            f"--max-rejected-fraction {settings.max_rejected_fraction}; first: "
            f"{first['file']} line {first['line']} column {first['column']}: {first['reason']}"
        )
    if totals["rows_train"] == 0:
        raise DataError(f"no complete rows left for the train split from {settings.input}")


def _write_rejects(version_url: str, rejected: list[dict]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rejected)
    storage.write_text_atomic(storage.join(version_url, dataset.REJECTED), text)


def _manifest(
    settings: Settings,
    spec: DatasetSpec,
    results: list[UnitResult],
    totals: dict[str, int],
    has_rejects: bool,
) -> dict:
    """The manifest, with paths relative to the version folder."""
    moments = merge_all([r.moments for r in results])
    splits = {
        split: [
            {"path": f"{split}/part-{r.index:05d}.parquet", "rows": r.rows[split]}
            for r in results
            if r.rows[split]
        ]
        for split in dataset.SPLITS
    }
    content = {s: sum(r.content[s] for r in results) % (1 << 64) for s in dataset.SPLITS}
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "spec": spec.digest(),
                "seed": settings.seed,
                "test_fraction": settings.test_fraction,
                "content": content,
                "rows": {s: totals[f"rows_{s}"] for s in dataset.SPLITS},
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    return {
        "format": dataset.FORMAT,
        "input": settings.input,
        **totals,
        "features": {f: moments.get(f, Moments()).to_dict() for f in spec.numeric_features},
        "target": {"name": spec.target, **moments.get(spec.target, Moments()).to_dict()},
        "splits": splits,
        "test_fraction": settings.test_fraction,
        "seed": settings.seed,
        "spec": spec.to_dict(),
        "fingerprint": fingerprint,
        "rejected": dataset.REJECTED if has_rejects else None,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _categories(spec: DatasetSpec, levels: dict[str, LevelCounts]) -> dict:
    """``feature_order`` and ``categories``, only when the spec has category features (an older
    manifest without them means a numeric-only dataset)."""
    if not spec.category_features:
        return {}
    return {
        "feature_order": list(spec.features),
        "categories": {
            name: levels.get(name, LevelCounts(name)).to_dict(spec.column(name))
            for name in spec.category_features
        },
    }
