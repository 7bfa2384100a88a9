"""Preprocess benchmark: regpipe-preprocess against pyarrow's whole-file CSV read (the parse
ceiling) and a naive Dask job (read_csv -> dropna -> random_split -> two to_csv), on the same
synthetic CSV, at each size.

    python -m bench.preprocess_bench [ROWS ...]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.datagen import generate_csv
from bench.measure import BIN, python, run_measured, table

PYARROW_READ = """
import sys, pyarrow.csv as c
t = c.read_csv(sys.argv[1])
print(t.num_rows)
"""

NAIVE_DASK = """
import sys, dask.dataframe as dd
from distributed import Client, LocalCluster
if __name__ == "__main__":
    with LocalCluster(processes=False, dashboard_address=None) as cluster, Client(cluster):
        df = dd.read_csv(sys.argv[1]).dropna()
        train, test = df.random_split([0.8, 0.2], random_state=0)
        train.to_csv(sys.argv[2] + "/train-*.csv", index=False)
        test.to_csv(sys.argv[2] + "/test-*.csv", index=False)
"""


def dataset(workdir: Path, rows: int) -> tuple[Path, Path]:
    csv = workdir / f"synthetic-{rows}.csv"
    spec = workdir / f"synthetic-{rows}.spec.yaml"
    if not csv.exists() or not spec.exists():
        generate_csv(csv, rows)
    return csv, spec


def preprocess_cmd(csv: Path, spec: Path, out: Path) -> list[str]:
    return [
        str(BIN / "regpipe-preprocess"),
        "--input",
        str(csv),
        "--spec",
        str(spec),
        "--output",
        str(out),
    ]


def run(rows_list: list[int], workdir: Path) -> str:
    lines = []
    for rows in rows_list:
        csv, spec = dataset(workdir, rows)
        mb = csv.stat().st_size / 2**20
        out = workdir / f"prepared-{rows}"
        ours = run_measured(preprocess_cmd(csv, spec, out))
        ceiling = run_measured(python("-c", PYARROW_READ, str(csv)))
        naive_out = workdir / f"naive-{rows}"
        shutil.rmtree(naive_out, ignore_errors=True)
        naive_out.mkdir()
        naive = run_measured(python("-c", NAIVE_DASK, str(csv), str(naive_out)))
        shutil.rmtree(naive_out, ignore_errors=True)
        for name, m in (
            ("regpipe-preprocess", ours),
            ("pyarrow read_csv (whole file)", ceiling),
            ("naive Dask job", naive),
        ):
            lines.append(
                [f"{rows:,}", name, rows / m.seconds, mb / m.seconds, m.peak_rss_mb, m.seconds]
            )
        lines.append(
            [
                f"{rows:,}",
                "ratio vs pyarrow / vs naive",
                f"{ceiling.seconds / ours.seconds:.2f}x / {naive.seconds / ours.seconds:.1f}x",
                "",
                "",
                "",
            ]
        )
    return "Preprocess (synthetic CSV, 20 float features, ~2% missing cells)\n" + table(
        ["rows", "job", "rows/s", "MB/s", "peak RSS MB", "wall s"], lines
    )


if __name__ == "__main__":
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000]
    work = Path("bench/out")
    work.mkdir(parents=True, exist_ok=True)
    print(run(sizes, work))
