"""CPU time per one-row request of one regpipe-predict worker, gevent against gthread.

A worker's own CPU time (utime + stime from ``/proc``) per request does not depend on what else
runs on the machine, unlike throughput and latency: the measure to compare worker classes on a
shared machine. One worker of each class (``WEB_CONCURRENCY=1``), ``hey -n 20000 -c 8`` one-row
POSTs, ``ROUNDS`` (3) interleaved rounds.

    python -m bench.worker_cpu [WORKDIR]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from bench.serve_bench import BIN, FEATURES, free_port, server, train

REQUESTS = 20_000
ROUNDS = 3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(log: Path) -> int:
    return int(re.findall(r"Booting worker with pid: (\d+)", log.read_text())[-1])


def run(workdir: Path) -> str:
    workdir = Path(workdir).resolve() / "worker_cpu"
    workdir.mkdir(parents=True, exist_ok=True)
    model_uri, _, rows = train(workdir)
    body = workdir / "one.json"
    body.write_text(json.dumps({"instances": [dict(zip(FEATURES, rows[0], strict=True))]}))
    per_request: dict[str, list[float]] = {"gevent": [], "gthread": []}
    with ExitStack() as stack:
        urls = {}
        for worker_class in per_request:
            port, log = free_port(), workdir / f"{worker_class}.log"
            env = {
                "MODEL_URI": model_uri,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "WORKER_CLASS": worker_class,
                "WEB_CONCURRENCY": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prom-{worker_class}"),
            }
            urls[worker_class] = stack.enter_context(
                server([str(BIN / "regpipe-predict")], env, port, log)
            )
        for _ in range(ROUNDS):
            for worker_class, url in urls.items():
                pid = worker_pid(workdir / f"{worker_class}.log")
                before = cpu_seconds(pid)
                hey = ["hey", "-n", str(REQUESTS), "-c", "8", "-m", "POST"]
                hey += ["-T", "application/json", "-D", str(body), url + "/predict"]
                subprocess.run(hey, capture_output=True, check=True, timeout=600)
                per_request[worker_class].append((cpu_seconds(pid) - before) / REQUESTS * 1e6)
    lines = [
        f"## One worker's CPU time per one-row request (µs; {ROUNDS} rounds of {REQUESTS:,})",
        "",
        "| worker class | rounds | median |",
        "|---|---|---|",
    ]
    for worker_class, values in per_request.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {worker_class} | {rounds} | {sorted(values)[len(values) // 2]:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out")))
