"""Score benchmark, at each size: regpipe-score on the prepared synthetic dataset's train split
(the larger one), and on the raw synthetic CSV with its spec beside regpipe-preprocess on the
same file. Rows/s of the scoring pass (from the job's own "scored" log line: the Dask tasks,
from submit to gather, cluster start excluded), rows per CPU-second of that pass (what a shared,
loaded machine distorts least), rows/s of the whole process (imports and cluster start
included), peak RSS of the process tree.

    python -m bench.score_bench [ROWS ...]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.measure import BIN, Measured, run_measured, sizes_main, table
from bench.preprocess_bench import dataset, preprocess_cmd
from bench.train_bench import prepared

JSON_LOGS = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
HEADERS = [
    "dataset rows",
    "input",
    "rows read",
    "tasks",
    "rows/s (scoring pass)",
    "rows per CPU-s (pass)",
    "rows/s (whole process)",
    "peak RSS MB",
    "wall s",
    "R²",
]


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


def score(flags: list[str], out: Path) -> tuple[Measured, dict, dict]:
    """Run regpipe-score into ``out`` (removed after); its measure, log line and manifest."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(BIN / "regpipe-score"), *flags, "--output", str(out)]
    measured = run_measured(cmd, env=JSON_LOGS)
    manifest = json.loads((out / "manifest.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    return measured, scored(measured.stdout), manifest


def row(rows: int, what: str, measured: Measured, done: dict, manifest: dict) -> list[object]:
    return [
        f"{rows:,}",
        what,
        f"{manifest['rows_read']:,}",
        len(manifest["parts"]),
        done["rows_per_s"],
        done["rows_read"] / done["cpu_seconds"],
        manifest["rows_read"] / measured.seconds,
        measured.peak_rss_mb,
        measured.seconds,
        f"{manifest['metrics']['r2']:.6f}",
    ]


def run(rows_list: list[int], workdir: Path) -> str:
    """Score the train split and the raw CSV at each size; return the Markdown table."""
    lines = []
    for rows in rows_list:
        data = prepared(workdir, rows)
        bundle = ["--model", str(model(workdir, data, rows))]
        out = workdir / f"scored-{rows}"
        lines.append(
            row(rows, "prepared train split", *score(["--input", f"{data}/train", *bundle], out))
        )
        csv, spec = dataset(workdir, rows)
        raw = score(["--input", str(csv), "--spec", str(spec), *bundle], out)
        lines.append(row(rows, "raw CSV (--spec)", *raw))
        redo = workdir / f"prepared-again-{rows}"
        shutil.rmtree(redo, ignore_errors=True)
        pre = run_measured(preprocess_cmd(csv, spec, redo))
        shutil.rmtree(redo, ignore_errors=True)
        pre_rate = raw[2]["rows_read"] / pre.seconds
        ratio = raw[2]["rows_read"] / raw[0].seconds / pre_rate
        lines.append(
            [f"{rows:,}", "regpipe-preprocess, same CSV", f"{raw[2]['rows_read']:,}", "", "", "",
             pre_rate, pre.peak_rss_mb, pre.seconds, f"raw score / preprocess: {ratio:.2f}x"]
        )  # fmt: skip
    title = (
        "Score (regpipe-score; default local cluster; raw CSV against preprocess, whole process)"
    )
    return title + "\n" + table(HEADERS, lines)


if __name__ == "__main__":
    sizes_main(run)
