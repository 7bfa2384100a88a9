"""Score benchmark: regpipe-score on the prepared synthetic dataset's train split (the larger
one) at each size: rows/s of the scoring pass (from the job's own "scored" log line: the Dask
tasks, from submit to gather, cluster start excluded), rows per CPU-second of that pass (what a
shared, loaded machine distorts least) and rows/s of
the whole process (imports and cluster start included), peak RSS of the process tree.

    python -m bench.score_bench [ROWS ...]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from bench.measure import BIN, run_measured, table
from bench.train_bench import prepared


def model(workdir: Path, data: Path, rows: int) -> Path:
    """A model of the prepared data: the train table's bundle, or a one-epoch one."""
    models = workdir / "bench-models"
    name = f"bench-{rows}"
    if not (models / name / "LATEST").exists():
        cmd = [str(BIN / "regpipe-train"), "--data", str(data), "--models", str(models)]
        run_measured([*cmd, "--name", name, "--epochs", "1"])
    return models / name


def scored(log: str) -> dict:
    """The job's ``scored`` JSON log line."""
    for line in log.splitlines():
        if line.startswith("{") and '"scored"' in line:
            doc = json.loads(line)
            if doc.get("msg") == "scored":
                return doc
    raise RuntimeError(f"no 'scored' line in:\n{log[-2000:]}")


def run(rows_list: list[int], workdir: Path) -> str:
    """Score the train split at each size; return the Markdown table."""
    lines = []
    for rows in rows_list:
        data = prepared(workdir, rows)
        out = workdir / f"scored-{rows}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [str(BIN / "regpipe-score"), "--input", str(data / "train")]
        cmd += ["--model", str(model(workdir, data, rows)), "--output", str(out)]
        measured = run_measured(cmd, env={"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
        done = scored(measured.stdout)
        manifest = json.loads((out / "manifest.json").read_text())
        shutil.rmtree(out, ignore_errors=True)
        lines.append(
            [
                f"{rows:,}",
                f"{manifest['rows_read']:,}",
                len(manifest["parts"]),
                done["rows_per_s"],
                done["rows_read"] / done["cpu_seconds"],
                manifest["rows_read"] / measured.seconds,
                measured.peak_rss_mb,
                measured.seconds,
                f"{manifest['metrics']['r2']:.6f}",
            ]
        )
    return "Score (regpipe-score on the prepared train split; default local cluster)\n" + table(
        [
            "dataset rows",
            "rows scored",
            "parts",
            "rows/s (scoring pass)",
            "rows per CPU-s (pass)",
            "rows/s (whole process)",
            "peak RSS MB",
            "wall s",
            "R²",
        ],
        lines,
    )


if __name__ == "__main__":
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000]
    work = Path("bench/out")
    work.mkdir(parents=True, exist_ok=True)
    print(run(sizes, work))
