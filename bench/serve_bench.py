"""Serving benchmark: regpipe-predict against the HTTP floor and the naive Flask app.

Three servers on 127.0.0.1, each gunicorn with regpipe-predict's worker settings
(``WEB_CONCURRENCY=2`` workers of ``WORKER_CLASS``: gevent by default, or gthread with
``THREADS=2``), so that only the app differs:

- ``regpipe-predict`` serving a Pipeline(StandardScaler, SGDRegressor) on 20 synthetic features;
- ``minimal``: a bare WSGI callable returning a constant JSON body (the HTTP floor);
- ``naive``: Flask, the pickle loaded with joblib, JSON → DataFrame → ``model.predict`` per
  request (the seed's design).

regpipe-predict is measured on three routes: ``POST /predict`` (records), and the Open
Inference Protocol's ``POST /v2/models/bench/infer`` with a JSON tensor and with a binary
tensor (the binary tensor extension: JSON header, then raw little-endian FP64 bytes; the answer
in binary too).

One-row POSTs at a fixed 500 req/s (``hey -q``; wrk 4 has no fixed rate) and at saturation
(``wrk -t2 -c16``), 10 s each, in ``BENCH_SERVE_ROUNDS`` (3) interleaved rounds, keeping each
row's best round (the machine may be shared; outside load only adds latency); then a
10,000-row batch in the same form: the server's own time (the ``Server-Timing`` header of
regpipe-predict) and the client round trip on loopback (median of 5 after 2 warm-ups). Below
the table: 100,000 rows as one binary tensor (server time), and what a refused 100,000-row
``/predict`` body costs against a valid one (client round trip; an error has no
``Server-Timing``).

    python -m bench.serve_bench [WORKDIR]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from regpipe_predict.settings import WORKER_CLASSES
from tests.support.net import free_port, running

BIN = Path(sys.executable).parent
DURATION = os.environ.get("BENCH_SERVE_SECONDS", "10")
ROUNDS = int(os.environ.get("BENCH_SERVE_ROUNDS", "3"))
WORKERS, THREADS = "2", "2"
WORKER_CLASS = os.environ.get("WORKER_CLASS", "gevent")  # regpipe-predict reads it too
N_FEATURES = 20
FEATURES = [f"f{i:02d}" for i in range(N_FEATURES)]

MINIMAL_APP = """
BODY = b'{"predictions": [1.0], "model": {"name": "minimal", "version": "0"}}'

def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
"""

NAIVE_APP = """
import os
import joblib
import pandas as pd
from flask import Flask, jsonify, request

model = joblib.load(os.environ["NAIVE_MODEL"])
app = Flask(__name__)

@app.post("/predict")
def predict():
    df = pd.DataFrame(request.get_json()["instances"])
    return jsonify({"predictions": model.predict(df).tolist()})
"""

GUNICORN_CONF = f"""
workers = {WORKERS}
worker_class = "{WORKER_CLASSES[WORKER_CLASS]}"
threads = {THREADS}
keepalive = 5
control_socket_disable = True
worker_tmp_dir = "/dev/shm"
"""


def train(workdir: Path) -> tuple[str, Path, list[list[float]]]:
    """Fit the bench model on synthetic data, publish it; return the model URI, pickle, rows."""
    from sklearn.linear_model import SGDRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from bench.datagen import true_model
    from regpipe_common.bundle import publish_bundle
    from tests.support.bundles import bundle_metadata

    locs, scales, weights, intercept = true_model(0)
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(20_000, N_FEATURES)) * scales + locs, columns=FEATURES)
    y = X.to_numpy() @ weights + intercept + rng.normal(0, 1, len(X))
    model = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(random_state=0))])
    model.fit(X, y)
    models = workdir / "models"
    shutil.rmtree(models, ignore_errors=True)
    meta = bundle_metadata(X.to_numpy(), y, FEATURES, "y", "bench")
    version = publish_bundle(str(models), "bench", model, meta)
    rows = np.round(rng.normal(size=(10_000, N_FEATURES)) * scales + locs, 6).tolist()
    return str(models / "bench"), models / "bench" / version / "model.joblib", rows


HEADER = "Inference-Header-Content-Length"
INFER_PATH = "/v2/models/bench/infer"


@dataclass
class Target:
    """One row of the table: a server, a route and a request body built from ``rows``."""

    server: str
    path: str
    body: Any  # rows -> (body bytes, headers)
    count: Any  # response -> number of predictions in it
    headers: dict[str, str] = field(default_factory=dict)


def records_body(rows: list[list[float]]) -> tuple[bytes, dict[str, str]]:
    doc = {"instances": [dict(zip(FEATURES, r, strict=True)) for r in rows]}
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def tensor_body(rows: list[list[float]]) -> tuple[bytes, dict[str, str]]:
    tensor = {"name": "input-0", "shape": [len(rows), N_FEATURES], "datatype": "FP64"}
    doc = {"inputs": [{**tensor, "data": rows}]}
    return json.dumps(doc).encode(), {"Content-Type": "application/json"}


def binary_body(rows: list[list[float]]) -> tuple[bytes, dict[str, str]]:
    data = np.asarray(rows, dtype="<f8").tobytes()
    tensor = {"name": "input-0", "shape": [len(rows), N_FEATURES], "datatype": "FP64"}
    doc = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}],
        "parameters": {"binary_data_output": True},
    }
    header = json.dumps(doc).encode()
    return header + data, {"Content-Type": "application/octet-stream", HEADER: str(len(header))}


def count_predictions(response: requests.Response) -> int:
    return len(response.json()["predictions"])


def count_json_outputs(response: requests.Response) -> int:
    return len(response.json()["outputs"][0]["data"])


def count_binary_outputs(response: requests.Response) -> int:
    n = int(response.headers[HEADER])
    return (len(response.content) - n) // 8


TARGETS = {
    "regpipe-predict /predict": Target(
        "regpipe-predict", "/predict", records_body, count_predictions
    ),
    "regpipe-predict /v2 JSON": Target(
        "regpipe-predict", INFER_PATH, tensor_body, count_json_outputs
    ),
    "regpipe-predict /v2 binary": Target(
        "regpipe-predict", INFER_PATH, binary_body, count_binary_outputs
    ),
    "minimal WSGI (floor)": Target("minimal WSGI (floor)", "/predict", records_body, lambda r: 1),
    "naive Flask + DataFrame": Target(
        "naive Flask + DataFrame", "/predict", records_body, count_predictions
    ),
}


def lua_string(data: bytes) -> str:
    """A Lua string literal holding these exact bytes (decimal escapes)."""
    return '"' + "".join(f"\\{b:03d}" for b in data) + '"'


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """``cmd`` listening on ``port``, once ``POST /predict`` of one zero row answers 200."""
    url = f"http://127.0.0.1:{port}"
    body = {"instances": [dict.fromkeys(FEATURES, 0.0)]}

    def ready() -> bool:
        return requests.post(url + "/predict", json=body, timeout=2).status_code == 200

    with running(cmd, ready, cmd[0], env=env, log=log, seconds=60):
        yield url


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def hey_fixed(url: str, body: Path, headers: dict[str, str]) -> dict[str, float]:
    """500 req/s: 10 workers × 50 req/s each."""
    extra = [f"{k}: {v}" for k, v in headers.items() if k != "Content-Type"]
    out = subprocess.run(
        [
            "hey",
            "-z",
            f"{DURATION}s",
            "-c",
            "10",
            "-q",
            "50",
            "-m",
            "POST",
            "-T",
            headers["Content-Type"],
            *(arg for h in extra for arg in ("-H", h)),
            "-D",
            str(body),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=int(DURATION) + 60,
        check=True,
    ).stdout
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1e3,
        "p99": float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1e3,
        "errors": sum(int(n) for c, n in codes.items() if c != "200"),
    }


def wrk_saturation(url: str, lua: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{DURATION}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        timeout=int(DURATION) + 60,
        check=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1)),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def batch_times(url: str, target: Target, rows: list[list[float]]) -> tuple[float, float | None]:
    """Median client round trip and median Server-Timing total (ms) of one batch of ``rows``."""
    body, headers = target.body(rows)
    client, server_ms = [], []
    for _ in range(7):
        start = time.perf_counter()
        response = requests.post(url, data=body, headers=headers, timeout=60)
        client.append((time.perf_counter() - start) * 1e3)
        response.raise_for_status()
        assert target.count(response) == len(rows)
        timing = re.search(r"total;dur=([\d.]+)", response.headers.get("Server-Timing", ""))
        if timing:
            server_ms.append(float(timing.group(1)))
    return statistics.median(client[2:]), (statistics.median(server_ms[2:]) if server_ms else None)


def error_cost(url: str, rows: list[list[float]]) -> dict[str, float]:
    """Median round trip (ms) of a valid and of a refused 100,000-row ``POST /predict``."""
    big = (rows * (100_000 // len(rows) + 1))[:100_000]
    bad = [*big[:-1], [*big[-1][:-1], "x"]]  # the last value of the last row is a string
    times: dict[str, float] = {}
    for name, doc, status in (("valid", big, 200), ("invalid", bad, 422)):
        body = json.dumps({"inputs": doc}).encode()
        trips = []
        for _ in range(5):
            start = time.perf_counter()
            response = requests.post(
                url + "/predict",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            trips.append((time.perf_counter() - start) * 1e3)
            assert response.status_code == status, response.text[:300]
        times[name] = statistics.median(trips[1:])
    return times


def run(workdir: Path) -> str:
    """Measure the three servers; return the serving table (Markdown)."""
    workdir = Path(workdir).resolve() / "serve"
    workdir.mkdir(parents=True, exist_ok=True)
    model_uri, pickle_path, rows = train(workdir)
    (workdir / "minimal_app.py").write_text(MINIMAL_APP)
    (workdir / "naive_app.py").write_text(NAIVE_APP)
    (workdir / "gunicorn_bench.py").write_text(GUNICORN_CONF)
    for i, target in enumerate(TARGETS.values()):
        body, headers = target.body(rows[:1])
        (workdir / f"one-{i}.body").write_bytes(body)
        lua = ['wrk.method = "POST"', *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())]
        lua.append(f"wrk.body = {lua_string(body)}")
        (workdir / f"post-{i}.lua").write_text("\n".join(lua) + "\n")
    gunicorn = [
        str(BIN / "gunicorn"),
        "-c",
        str(workdir / "gunicorn_bench.py"),
        "--chdir",
        str(workdir),
    ]
    servers = {
        "regpipe-predict": (  # the server of three rows
            [str(BIN / "regpipe-predict")],
            {
                "MODEL_URI": model_uri,
                "HOST": "127.0.0.1",
                "MODEL_POLL_INTERVAL": "10",
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prom"),
            },
        ),
        "minimal WSGI (floor)": ([*gunicorn, "minimal_app:app"], {}),
        "naive Flask + DataFrame": (
            [*gunicorn, "naive_app:app"],
            {"NAIVE_MODEL": str(pickle_path)},
        ),
    }
    with ExitStack() as stack:
        urls = {}
        for name, (cmd, env) in servers.items():
            port = free_port()
            if name == "regpipe-predict":
                env = {**env, "PORT": str(port)}
            else:
                cmd = [*cmd, "--bind", f"127.0.0.1:{port}"]
            log = workdir / f"{name.split()[0]}.log"
            urls[name] = stack.enter_context(server(cmd, env, port, log))
        return table(measure(urls, workdir, rows))


def measure(servers: dict[str, str], workdir: Path, rows: list[list[float]]) -> dict:
    """Interleaved rounds (rows take turns, so background load hits all alike); per row the
    best round: outside load only ever adds latency and takes throughput."""
    names = list(TARGETS)
    urls = {name: servers[t.server] + t.path for name, t in TARGETS.items()}
    files = {
        name: (workdir / f"post-{i}.lua", workdir / f"one-{i}.body") for i, name in enumerate(names)
    }
    for name in names:  # warm up
        warm = ["wrk", "-t1", "-c4", "-d2s", "-s", str(files[name][0]), urls[name]]
        subprocess.run(warm, capture_output=True, timeout=30, check=True)
    fixed: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    saturated: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(ROUNDS):
        for name in names:
            lua, one = files[name]
            fixed[name].append(hey_fixed(urls[name], one, TARGETS[name].body(rows[:1])[1]))
            saturated[name].append(wrk_saturation(urls[name], lua))
    results = {}
    for name in names:
        best_fixed = min(fixed[name], key=lambda r: r["p99"])
        best_sat = max(saturated[name], key=lambda r: r["rps"])
        errors = sum(r["errors"] for r in fixed[name] + saturated[name])
        batch = batch_times(urls[name], TARGETS[name], rows) if "floor" not in name else None
        results[name] = (best_fixed, best_sat, batch, errors)
    regpipe = servers["regpipe-predict"]
    big = (rows * 10)[:100_000]
    extra = {
        "binary_100k": batch_times(
            regpipe + INFER_PATH, TARGETS["regpipe-predict /v2 binary"], big
        ),
        "errors": error_cost(regpipe, rows),
    }
    return {"rows": results, **extra}


def table(measured: dict) -> str:
    results = measured["rows"]
    floor = results["minimal WSGI (floor)"][1]["rps"]
    threads = f" × {THREADS} threads" if WORKER_CLASS == "gthread" else ""
    lines = [
        f"## Serving one-row requests (gunicorn, {WORKERS} {WORKER_CLASS} workers{threads}, "
        f"127.0.0.1; best of {ROUNDS} interleaved rounds of {DURATION} s per load)",
        "",
        "| server / route | 500 req/s: achieved | p50 ms | p99 ms | saturation req/s | × floor "
        "| p50 ms | p99 ms | errors (all rounds) | 10k-row batch: server ms | round trip ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (fixed, sat, batch, errors) in results.items():
        server_ms = f"{batch[1]:.1f}" if batch and batch[1] is not None else "-"
        trip = f"{batch[0]:.1f}" if batch else "-"
        lines.append(
            f"| {name} | {fixed['rps']:.0f} | {fixed['p50']:.2f} | {fixed['p99']:.2f} "
            f"| {sat['rps']:.0f} | {sat['rps'] / floor:.2f} | {sat['p50']:.2f} | {sat['p99']:.2f} "
            f"| {errors} | {server_ms} | {trip} |"
        )
    binary_trip, binary_server = measured["binary_100k"]
    errors = measured["errors"]
    lines += [
        "",
        f"100,000 rows as one binary FP64 tensor (/v2, binary out): server {binary_server:.1f} ms, "
        f"round trip {binary_trip:.1f} ms. A refused 100,000-row /predict body (last value a "
        f"string): round trip {errors['invalid']:.0f} ms against {errors['valid']:.0f} ms for the "
        f"valid body ({errors['invalid'] / errors['valid']:.2f}×).",
        "",
        "Targets: p99 < 10 ms at 500 req/s; saturation ≥ 0.5× the floor (/v2 ≥ 0.8×) and above "
        "the naive app; 10,000 rows < 50 ms server time (regpipe-predict's Server-Timing: parse, "
        "validate, predict, serialize), binary < JSON; 100,000 binary rows < 20 ms server time. "
        "wrk, hey and the servers share this machine's cores.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out")))
