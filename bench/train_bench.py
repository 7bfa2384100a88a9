"""Train benchmark: regpipe-train against the naive seed-style training (one ``partial_fit``
per partition, unscaled features, default ``SGDRegressor``) on the same prepared synthetic
dataset, at each size: rows/s per epoch, epochs, peak RSS, wall time, test R², optimum R².

    python -m bench.train_bench [ROWS ...]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.measure import BIN, Measured, python, run_measured, sizes_main, table
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


def run(rows_list: list[int], workdir: Path) -> str:
    """Measure both trainings at each size; return the Markdown table."""
    lines = []
    for rows in rows_list:
        data = prepared(workdir, rows)
        train_rows = json.loads((data / "manifest.json").read_text())["rows_train"]
        ours, meta = train_ours(data, workdir / "bench-models", f"bench-{rows}")
        params, optimum = meta["params"], meta["optimum"]
        lines.append(
            [
                f"{rows:,}",
                f"{train_rows:,}",
                "regpipe-train",
                _rates(params["history"]),
                f"{params['epochs_run']} (best {params['best_epoch']})",
                ours.peak_rss_mb,
                ours.seconds,
                f"{meta['metrics']['r2']:.6f}",
                f"{optimum['r2']:.6f}",
                f"{optimum['gap_r2']:.1e}",
            ]
        )
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
    sizes_main(run)
