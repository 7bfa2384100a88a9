"""`make bench`: every benchmark table, measured in one run on this machine.

BENCH_ROWS (default "1000000,10000000") sets the dataset sizes;
BENCH_ONLY=preprocess,train,score,serve picks tables; BENCH_DIR (default bench/out) holds
the generated data.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from bench import category_serve_bench, preprocess_bench, score_bench, serve_bench, train_bench


def main() -> None:
    rows = [int(x) for x in os.environ.get("BENCH_ROWS", "1000000,10000000").split(",")]
    only = set(os.environ.get("BENCH_ONLY", "preprocess,train,score,serve").split(","))
    workdir = Path(os.environ.get("BENCH_DIR", "bench/out"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"# regpipe benchmarks ({os.cpu_count()} cores, Python {platform.python_version()})\n")
    if "preprocess" in only:
        print(preprocess_bench.run(rows, workdir), "\n", flush=True)
    if "train" in only:
        print(train_bench.run(rows, workdir), "\n", flush=True)
    if "score" in only:
        print(score_bench.run(rows, workdir), "\n", flush=True)
    if "serve" in only:
        print(serve_bench.run(workdir), "\n", flush=True)
        print(category_serve_bench.run(workdir), "\n", flush=True)


if __name__ == "__main__":
    main()
