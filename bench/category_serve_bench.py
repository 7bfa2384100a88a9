"""Serving a model with category features against a numeric model of as many encoded columns.

Two ``regpipe-predict`` servers on 127.0.0.1 (2 workers each, the serving benchmark's
settings): a category model (4 numbers + 2 category features of 8 levels, one-hot: 20 columns,
the issue 11 contract's ColumnTransformer pipeline) and a numeric Pipeline(StandardScaler,
SGDRegressor) on 20 features. Per server: one-row ``POST /predict`` (records) at saturation
(``wrk -t2 -c16``, best of ``BENCH_SERVE_ROUNDS`` interleaved rounds), then a 10,000-row batch
of records (``Server-Timing`` total, median of 5 after 2 warm-ups), and for the category model
the same 10,000 rows as OIP tensors (BYTES + FP64, binary extension).

    python -m bench.category_serve_bench [WORKDIR]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench.serve_bench import (
    DURATION,
    HEADER,
    ROUNDS,
    Target,
    batch_times,
    count_binary_outputs,
    count_predictions,
    lua_string,
    wrk_saturation,
)
from tests.support.bundles import bundle_metadata
from tests.support.net import free_port

BIN = Path(sys.executable).parent
NUMBERS = ["n0", "n1", "n2", "n3"]
CATEGORIES = {"c0": [f"a{i}" for i in range(8)], "c1": [f"b{i}" for i in range(8)]}
CAT_FEATURES = [*NUMBERS, *CATEGORIES]
NUM_FEATURES = [f"f{i:02d}" for i in range(20)]  # as many columns as the one-hot design
ROWS = 10_000


def category_data(n: int, seed: int) -> tuple[list[list[Any]], np.ndarray]:
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(n, len(NUMBERS))) * [3, 50, 0.5, 10] + [1, 100, 0, 5]
    y = numbers @ np.array([1.0, 0.1, -2.0, 0.3]) + 40
    columns = []
    for i, levels in enumerate(CATEGORIES.values()):
        picks = rng.integers(0, len(levels) + 1, size=n)  # the last: never seen in training
        y = y + np.where(picks < len(levels), picks * (1.5 - i), 0.0)
        columns.append([levels[p] if p < len(levels) else "unseen" for p in picks])
    levels = zip(*columns, strict=True)
    full = [[*num, *c] for num, c in zip(np.round(numbers, 6).tolist(), levels, strict=True)]
    return full, y + rng.normal(0, 1, n)


def publish_category(models: Path) -> str:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import SGDRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from regpipe_common.bundle import publish_bundle

    rows, y = category_data(20_000, 1)
    X = np.array(rows, dtype=object)
    encode = ColumnTransformer(
        [
            ("number", StandardScaler(), list(range(len(NUMBERS)))),
            (
                "category",
                OneHotEncoder(categories=list(CATEGORIES.values()), handle_unknown="ignore"),
                [len(NUMBERS), len(NUMBERS) + 1],
            ),
        ]
    )
    model = Pipeline([("encode", encode), ("sgd", SGDRegressor(random_state=0))]).fit(X, y)
    seen = np.isin(X[:, 4], CATEGORIES["c0"]).mean(), np.isin(X[:, 5], CATEGORIES["c1"]).mean()
    categories = {
        f: {"levels": levels, "infrequent_share": float(1 - share), "missing": "drop"}
        for (f, levels), share in zip(CATEGORIES.items(), seen, strict=True)
    }
    numbers = X[:, : len(NUMBERS)].astype(float)
    meta = {**bundle_metadata(numbers, y, NUMBERS, "y", "bench"), "features": CAT_FEATURES}
    meta["categories"] = categories
    return publish_bundle(str(models), "bench", model, meta)


def publish_numeric(models: Path) -> str:
    from sklearn.linear_model import SGDRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from regpipe_common.bundle import publish_bundle

    rng = np.random.default_rng(2)
    X = rng.normal(size=(20_000, len(NUM_FEATURES)))
    y = X @ rng.normal(size=len(NUM_FEATURES)) + 40
    model = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(random_state=0))])
    meta = bundle_metadata(X, y, NUM_FEATURES, "y", "bench")
    return publish_bundle(str(models), "bench", model.fit(X, y), meta)


def records(features: list[str], rows: list[list[Any]]) -> tuple[bytes, dict[str, str]]:
    doc = {"instances": [dict(zip(features, r, strict=True)) for r in rows]}
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def bytes_tensors(rows: list[list[Any]]) -> tuple[bytes, dict[str, str]]:
    """One tensor per feature in the binary extension: FP64 numbers, BYTES levels."""
    inputs, raw = [], []
    for j, feature in enumerate(CAT_FEATURES):
        column = [r[j] for r in rows]
        if feature in CATEGORIES:
            data = b"".join(struct.pack("<I", len(v)) + v.encode() for v in column)
            datatype = "BYTES"
        else:
            data, datatype = np.asarray(column, dtype="<f8").tobytes(), "FP64"
        shape = [len(rows)]
        params = {"binary_data_size": len(data)}
        inputs.append({"name": feature, "shape": shape, "datatype": datatype, "parameters": params})
        raw.append(data)
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    headers = {"Content-Type": "application/octet-stream", HEADER: str(len(header))}
    return header + b"".join(raw), headers


@contextmanager
def predict_server(models: Path, workdir: Path, tag: str) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "MODEL_URI": str(models / "bench"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL_POLL_INTERVAL": "10",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prom-{tag}"),
    }
    url = f"http://127.0.0.1:{port}"
    with open(workdir / f"{tag}.log", "wb") as out:
        proc = subprocess.Popen([str(BIN / "regpipe-predict")], env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{tag} server never became ready")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run(workdir: Path) -> str:
    workdir = Path(workdir).resolve() / "serve-categories"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    publish_category(workdir / "cat-models")
    publish_numeric(workdir / "num-models")
    cat_rows, _ = category_data(ROWS, 3)
    num_rows = np.round(np.random.default_rng(4).normal(size=(ROWS, 20)), 6).tolist()
    bodies = {
        "category": records(CAT_FEATURES, cat_rows[:1]),
        "numeric": records(NUM_FEATURES, num_rows[:1]),
    }
    for name, (body, headers) in bodies.items():
        lua = ['wrk.method = "POST"', *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())]
        (workdir / f"{name}.lua").write_text("\n".join([*lua, f"wrk.body = {lua_string(body)}"]))
    with ExitStack() as stack:
        urls = {
            "category": stack.enter_context(predict_server(workdir / "cat-models", workdir, "cat")),
            "numeric": stack.enter_context(predict_server(workdir / "num-models", workdir, "num")),
        }
        for name, url in urls.items():  # warm up
            warm = [
                "wrk",
                "-t1",
                "-c4",
                "-d2s",
                "-s",
                str(workdir / f"{name}.lua"),
                url + "/predict",
            ]
            subprocess.run(warm, capture_output=True, timeout=30, check=True)
        saturated: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
        for _ in range(ROUNDS):
            for name, url in urls.items():
                lua = workdir / f"{name}.lua"
                saturated[name].append(wrk_saturation(url + "/predict", lua))
        batches = {
            "category": batch_times(
                urls["category"] + "/predict",
                Target("", "", lambda r: records(CAT_FEATURES, r), count_predictions),
                cat_rows,
            ),
            "numeric": batch_times(
                urls["numeric"] + "/predict",
                Target("", "", lambda r: records(NUM_FEATURES, r), count_predictions),
                num_rows,
            ),
        }
        binary = batch_times(
            urls["category"] + "/v2/models/bench/infer",
            Target("", "", bytes_tensors, count_binary_outputs),
            cat_rows,
        )
    return table(saturated, batches, binary)


def table(
    saturated: dict[str, list[dict[str, float]]],
    batches: dict[str, tuple[float, float | None]],
    binary: tuple[float, float | None],
) -> str:
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in saturated.items()}
    errors = {name: sum(r["errors"] for r in runs) for name, runs in saturated.items()}
    numeric_rps = best["numeric"]["rps"]
    labels = {
        "numeric": "numeric, 20 features",
        "category": "category, 4 numbers + 2 × 8 levels (20 one-hot columns)",
    }
    lines = [
        f"## Serving a category model (regpipe-predict, 2 workers, 127.0.0.1; one-row "
        f"saturation best of {ROUNDS} interleaved rounds of {DURATION} s)",
        "",
        "| model | saturation req/s | × numeric | p50 ms | p99 ms | errors | 10k-row /predict: "
        "server ms | round trip ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("numeric", "category"):
        sat, (trip, server_ms) = best[name], batches[name]
        lines.append(
            f"| {labels[name]} | {sat['rps']:.0f} | {sat['rps'] / numeric_rps:.2f} "
            f"| {sat['p50']:.2f} | {sat['p99']:.2f} | {errors[name]} | {server_ms:.1f} "
            f"| {trip:.1f} |"
        )
    lines += [
        "",
        f"10,000 rows of the category model as OIP tensors (BYTES + FP64, binary in and out): "
        f"server {binary[1]:.1f} ms, round trip {binary[0]:.1f} ms. Targets: saturation ≥ 0.8× "
        "the numeric model; a 10,000-row batch < 50 ms server time.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out")))
