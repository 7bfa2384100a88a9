"""Train benchmark: regpipe-train against the naive seed-style training (one ``partial_fit``
per partition, unscaled features, default ``SGDRegressor``) on the same prepared synthetic
dataset, at each size: rows/s per epoch, epochs, peak RSS, wall time, test R², optimum R².
Then regpipe-train on two hard prepared datasets written here to the dataset contract:
``categorical`` (two numbers and three category columns of 10, 100 and 1,000 levels, Zipf-like
frequencies, the default 100 kept levels) and ``correlated`` (three sizes of one object, its
volume and a free column: condition number ~500 after standardization).

    python -m bench.train_bench [--hard] [ROWS ...]     (--hard: only the two hard datasets)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.measure import BIN, Measured, python, run_measured, table
from bench.preprocess_bench import dataset, preprocess_cmd

NAIVE = """
import json, sys, time
from pathlib import Path
import numpy as np, pyarrow.parquet as pq
from sklearn.linear_model import SGDRegressor

data = Path(sys.argv[1])
manifest = json.loads((data / "manifest.json").read_text())
features, target = list(manifest["features"]), manifest["target"]["name"]

def parts(split):
    for entry in manifest["splits"][split]:
        t = pq.read_table(data / entry["path"], columns=[*features, target])
        yield np.column_stack([t[f].to_numpy() for f in features]), t[target].to_numpy()

model, rows, error = SGDRegressor(), 0, None
started = time.perf_counter()
try:
    for x, y in parts("train"):
        model.partial_fit(x, y)
        rows += len(y)
except ValueError as exc:
    error = str(exc).splitlines()[0]
seconds = time.perf_counter() - started
n = s = s2 = sse = 0.0
if error is None:
    for x, y in parts("test"):
        with np.errstate(all="ignore"):
            r = y - model.predict(x)
        n, s, s2, sse = n + len(y), s + y.sum(), s2 + y @ y, sse + r @ r
r2 = 1 - sse / (s2 - s * s / n) if n else float("nan")
print(json.dumps({"rows": rows, "seconds": seconds, "r2": r2, "error": error}))
"""


def prepared(workdir: Path, rows: int) -> Path:
    """The synthetic CSV prepared by regpipe-preprocess (reused when already there)."""
    out = workdir / f"prepared-{rows}"
    if (out / "manifest.json").exists():
        return out
    csv, spec = dataset(workdir, rows)
    run_measured(preprocess_cmd(csv, spec, out))
    return out


def train_ours(data: Path, models: Path, name: str) -> tuple[Measured, dict[str, Any]]:
    shutil.rmtree(models / name, ignore_errors=True)
    measured = run_measured(
        [str(BIN / "regpipe-train"), "--data", str(data), "--models", str(models), "--name", name],
        env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"},
    )
    latest = (models / name / "LATEST").read_text().strip()
    return measured, json.loads((models / name / latest / "metadata.json").read_text())


def _rates(history: list[dict[str, Any]]) -> str:
    return " / ".join(f"{h['rows_per_s'] / 1e6:.2f}M" for h in history)


# ---- hard datasets, written to the prepared-dataset contract in 1M-row chunks --------------

CHUNK = 1_000_000
CATEGORY_LEVELS = {"carrier": 10, "origin": 100, "dest": 1_000}
MAX_CATEGORIES = 100
Chunk = tuple[dict[str, np.ndarray], dict[str, pa.DictionaryArray], np.ndarray]


def _zipf_codes(rng: np.random.Generator, rows: int, levels: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, levels + 1) ** 1.2
    return rng.choice(levels, size=rows, p=weights / weights.sum()).astype(np.int32)


def categorical_chunk(rng: np.random.Generator, rows: int) -> Chunk:
    """Two numbers (one mostly set by ``dest``, as a distance) and three category columns."""
    effects = np.random.default_rng(1).normal(0, 2.0, (3, 1_000))
    where = np.random.default_rng(2).normal(0, 1.0, 1_000)
    cats, y = {}, rng.normal(0, 1.0, rows)
    for j, (name, n) in enumerate(CATEGORY_LEVELS.items()):
        codes = _zipf_codes(rng, rows, n)
        names = pa.array([f"{name}_{i}" for i in range(n)])
        cats[name] = pa.DictionaryArray.from_arrays(pa.array(codes), names)
        y += effects[j, codes]
    distance = where[cats["dest"].indices.to_numpy()] + rng.normal(0, 0.1, rows)
    hour = rng.uniform(0, 24, rows)
    y += 5.0 * distance + 0.2 * hour
    return {"distance": distance, "hour": hour}, cats, y


def correlated_chunk(rng: np.random.Generator, rows: int) -> Chunk:
    """Length, width, height of one object, its volume and a free column."""
    size = rng.uniform(1.0, 2.0, rows)
    sizes = [size * (a + 0.015 * rng.normal(size=rows)) for a in (1.0, 0.8, 0.6)]
    numbers = dict(zip(["length", "width", "height"], sizes, strict=True))
    numbers["volume"] = sizes[0] * sizes[1] * sizes[2]
    numbers["free"] = rng.normal(5.0, 2.0, rows)
    coefs = {"length": 20.0, "width": -25.0, "height": 4.0, "volume": 1.5, "free": 0.5}
    y = sum(c * numbers[k] for k, c in coefs.items()) + 10.0 + rng.normal(0, 0.3, rows)
    return numbers, {}, y


class _Stats:
    """count/mean/var/min/max over chunks (sums in float64; fine for a benchmark)."""

    def __init__(self) -> None:
        self.n, self.s, self.s2, self.lo, self.hi = 0, 0.0, 0.0, np.inf, -np.inf

    def add(self, v: np.ndarray) -> None:
        self.n += len(v)
        self.s += float(v.sum())
        self.s2 += float(v @ v)
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))

    def doc(self) -> dict[str, float]:
        mean = self.s / self.n
        var = max(self.s2 / self.n - mean * mean, 0.0)
        return {"count": self.n, "mean": mean, "var": var, "min": self.lo, "max": self.hi}


def write_hard(out: Path, rows: int, make: Callable[[np.random.Generator, int], Chunk]) -> Path:
    """A prepared dataset of ``rows`` rows from ``make`` (reused when already there)."""
    if (out / "manifest.json").exists():
        return out
    rng = np.random.default_rng(0)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    stats: dict[str, _Stats] = {}
    levels: dict[str, Counter] = {}
    digest = hashlib.sha256()
    for i, start in enumerate(range(0, rows, CHUNK)):
        numbers, cats, y = make(rng, min(CHUNK, rows - start))
        test = rng.random(len(y)) < 0.2
        for split, mask in (("train", ~test), ("test", test)):
            columns = {k: v[mask] for k, v in numbers.items()}
            columns |= {k: v.filter(pa.array(mask)) for k, v in cats.items()} | {"y": y[mask]}
            if split == "train":
                for k, v in {**numbers, "y": y}.items():
                    stats.setdefault(k, _Stats()).add(v[mask])
                for k in cats:
                    levels.setdefault(k, Counter()).update(_level_counts(columns[k]))
            rel = f"{split}/part-{i:05d}.parquet"
            (out / split).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(columns), out / rel)
            digest.update((out / rel).read_bytes())
            splits[split].append({"path": rel, "rows": int(mask.sum())})
    features = [*numbers, *cats]
    manifest: dict[str, Any] = {
        "format": "regpipe-dataset/1",
        "input": f"bench {make.__name__}",
        "rows_read": rows,
        "rows_rejected": 0,
        "rows_dropped_missing": 0,
        "rows_train": stats["y"].n,
        "rows_test": rows - stats["y"].n,
        "features": {k: stats[k].doc() for k in numbers},
        "target": {"name": "y", **stats["y"].doc()},
        "splits": splits,
        "spec": {"name": make.__name__, "target": "y", "features": features, "key": []},
        "fingerprint": digest.hexdigest(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if cats:
        manifest["feature_order"] = features
        manifest["categories"] = {k: _category_doc(levels[k]) for k in cats}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def _level_counts(values: pa.DictionaryArray) -> dict[str, int]:
    counts = np.bincount(values.indices.to_numpy(), minlength=len(values.dictionary))
    return {k: int(c) for k, c in zip(values.dictionary.to_pylist(), counts, strict=True) if c}


def _category_doc(counts: Counter) -> dict[str, Any]:
    order = sorted(counts.items(), key=lambda t: (-t[1], t[0]))
    total = sum(counts.values())
    kept = order[:MAX_CATEGORIES]
    return {
        "count": total,
        "distinct": len(order),
        "levels": dict(order),
        "kept": [level for level, _ in kept],
        "infrequent_share": 1.0 - sum(c for _, c in kept) / total,
        "missing": "drop",
        "max_categories": MAX_CATEGORIES,
    }


def run_hard(rows_list: list[int], workdir: Path) -> list[list[object]]:
    """regpipe-train on the categorical and the correlated dataset at each size."""
    lines = []
    for rows in rows_list:
        for make in (categorical_chunk, correlated_chunk):
            kind = make.__name__.removesuffix("_chunk")
            data = write_hard(workdir / f"prepared-{kind}-{rows}", rows, make)
            ours, meta = train_ours(data, workdir / "bench-models", f"bench-{kind}-{rows}")
            lines.append(_line(rows, meta, ours, f"regpipe-train ({kind})"))
    return lines


def _line(rows: int, meta: dict[str, Any], ours: Measured, job: str) -> list[object]:
    params, optimum = meta["params"], meta["optimum"]
    columns = params["preconditioning"]["columns"]
    return [
        f"{rows:,}",
        f"{meta['dataset_counts']['train']:,}",
        f"{job}, {columns} cols",
        _rates(params["history"]),
        f"{params['epochs_run']} (best {params['best_epoch']})",
        ours.peak_rss_mb,
        ours.seconds,
        f"{meta['metrics']['r2']:.6f}",
        f"{optimum['r2']:.6f}" if optimum["r2"] is not None else "skipped",
        f"{optimum['gap_r2']:.1e}" if optimum["gap_r2"] is not None else "",
    ]


def run(rows_list: list[int], workdir: Path, hard_only: bool = False) -> str:
    """Measure the trainings at each size; return the Markdown table."""
    lines = [] if hard_only else _run_synthetic(rows_list, workdir)
    lines += run_hard(rows_list, workdir)
    return _table(lines)


def _run_synthetic(rows_list: list[int], workdir: Path) -> list[list[object]]:
    lines = []
    for rows in rows_list:
        data = prepared(workdir, rows)
        train_rows = json.loads((data / "manifest.json").read_text())["rows_train"]
        ours, meta = train_ours(data, workdir / "bench-models", f"bench-{rows}")
        optimum = meta["optimum"]
        lines.append(_line(rows, meta, ours, "regpipe-train"))
        naive = run_measured(python("-c", NAIVE, str(data)))
        result = json.loads(naive.stdout.strip().splitlines()[-1])
        r2 = "diverged: " + result["error"] if result["error"] else f"{result['r2']:.4g}"
        lines.append(
            [
                f"{rows:,}",
                f"{train_rows:,}",
                "naive seed-style",
                f"{result['rows'] / result['seconds'] / 1e6:.2f}M",
                "1",
                naive.peak_rss_mb,
                naive.seconds,
                r2,
                f"{optimum['r2']:.6f}",
                "" if result["error"] else f"{optimum['r2'] - result['r2']:.1e}",
            ]
        )
    return lines


def _table(lines: list[list[object]]) -> str:
    return "Train (prepared synthetic data; rows/s per epoch over the fitted train rows)\n" + table(
        [
            "rows",
            "train rows",
            "job",
            "rows/s per epoch",
            "epochs",
            "peak RSS MB",
            "wall s",
            "test R²",
            "optimum R²",
            "gap",
        ],
        lines,
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    hard = "--hard" in args
    sizes = [int(x) for x in args if x != "--hard"] or [1_000_000]
    work = Path("bench/out")
    work.mkdir(parents=True, exist_ok=True)
    print(run(sizes, work, hard_only=hard))
