"""Slow clients against regpipe-predict: does a normal client keep its throughput?

``SLOW`` (200) connections trickle a request one byte at a time, half of them the headers, half a
body after complete headers; the server may drop one (a header read has ``KEEPALIVE`` seconds),
so each dropped one is reopened and ``SLOW`` stay open. A normal client sends one-row POSTs
one after another on one keep-alive connection: first alone (the baseline), then for ``SECONDS``
(30) with the slow connections open. Issue 8's target: >= 50% of the baseline throughput, no
failed request, p99 < 1 s. ``WORKER_CLASS`` picks the gunicorn worker class to measure.

    python -m bench.slow_clients [WORKDIR]
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import requests

SLOW = int(os.environ.get("BENCH_SLOW_CLIENTS", "200"))
SECONDS = float(os.environ.get("BENCH_SLOW_SECONDS", "30"))
BASELINE_SECONDS = 10.0
REQUEST_TIMEOUT = 5.0


class SlowClients:
    """``n`` connections to ``127.0.0.1:port`` that each send one byte per ``interval``.

    One thread drives them all; it stops on ``__exit__`` or after ``max_seconds`` (bounded).
    ``reopened`` counts connections the server closed and that were opened again.
    """

    def __init__(self, port: int, n: int, interval: float = 0.2, max_seconds: float = 120.0):
        self.port, self.n, self.interval, self.max_seconds = port, n, interval, max_seconds
        self.reopened = 0
        self._slots: list[tuple[socket.socket, bytes, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _payload(self, i: int) -> bytes:
        """Odd slots trickle a body behind complete headers, even ones the headers themselves."""
        if i % 2:
            head = (
                "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 100000\r\n\r\n"
            )
            return head.encode() + b" " * 100_000
        return b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 100_000

    def _open(self, i: int) -> tuple[socket.socket, bytes, int]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        payload = self._payload(i)
        if i % 2:  # the headers at once, then the body byte by byte
            start = payload.index(b"\r\n\r\n") + 4
            sock.sendall(payload[:start])
            return sock, payload, start
        return sock, payload, 0

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            for i, (sock, payload, sent) in enumerate(self._slots):
                try:
                    sock.send(payload[sent : sent + 1])
                    self._slots[i] = (sock, payload, sent + 1)
                except OSError:  # closed by the server: open another one
                    sock.close()
                    self.reopened += 1
                    with contextlib.suppress(OSError):  # tried again next round
                        self._slots[i] = self._open(i)

    def __enter__(self) -> SlowClients:
        self._slots = [self._open(i) for i in range(self.n)]
        for i, (sock, payload, sent) in enumerate(self._slots):
            sock.send(payload[sent : sent + 1])  # each one has begun its request
            self._slots[i] = (sock, payload, sent + 1)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for sock, _, _ in self._slots:
            sock.close()


def normal_client(
    url: str, body: dict, seconds: float, count: int = 1_000_000, timeout: float = REQUEST_TIMEOUT
) -> list[float | None]:
    """Latencies (s) of sequential POSTs on one keep-alive connection; None for a failure.

    Stops after ``count`` requests or ``seconds``, whichever comes first.
    """
    latencies: list[float | None] = []
    deadline = time.monotonic() + seconds
    with requests.Session() as session:
        while time.monotonic() < deadline and len(latencies) < count:
            start = time.perf_counter()
            try:
                ok = session.post(url, json=body, timeout=timeout).status_code == 200
            except requests.RequestException:
                ok = False
            latencies.append(time.perf_counter() - start if ok else None)
    return latencies


def summary(name: str, latencies: list[float | None], seconds: float) -> dict[str, float | str]:
    good = sorted(v for v in latencies if v is not None)
    p99 = good[min(len(good) - 1, int(0.99 * len(good)))] if good else float("nan")
    return {
        "phase": name,
        "requests": len(good),
        "failures": len(latencies) - len(good),
        "rps": len(good) / seconds,
        "p50_ms": statistics.median(good) * 1e3 if good else float("nan"),
        "p99_ms": p99 * 1e3,
        "max_ms": good[-1] * 1e3 if good else float("nan"),
    }


def run(workdir: Path) -> str:
    """Baseline, then ``SLOW`` slow connections for ``SECONDS``; the table (Markdown)."""
    from bench.serve_bench import BIN, FEATURES, free_port, server, train

    workdir = Path(workdir).resolve() / "slow"
    workdir.mkdir(parents=True, exist_ok=True)
    model_uri, _, rows = train(workdir)
    port = free_port()
    env = {
        "MODEL_URI": model_uri,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prom"),
    }
    body = {"instances": [dict(zip(FEATURES, rows[0], strict=True))]}
    with server([str(BIN / "regpipe-predict")], env, port, workdir / "server.log") as url:
        normal_client(url + "/predict", body, 2.0)  # warm up
        alone = normal_client(url + "/predict", body, BASELINE_SECONDS)
        base = summary("alone", alone, BASELINE_SECONDS)
        with SlowClients(port, SLOW, max_seconds=SECONDS + 30) as slow:
            loaded = normal_client(url + "/predict", body, SECONDS)
        slowed = summary(f"{SLOW} slow connections open", loaded, SECONDS)
    worker = os.environ.get("WORKER_CLASS", "default")
    lines = [
        f"## A normal client with {SLOW} slow clients (WORKER_CLASS={worker}, {SECONDS:.0f} s)",
        "",
        "| phase | requests | failures | req/s | p50 ms | p99 ms | max ms | × alone |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in (base, slowed):
        lines.append(
            f"| {row['phase']} | {row['requests']} | {row['failures']} | {row['rps']:.0f} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.2f} "
            f"| {row['rps'] / base['rps']:.2f} |"
        )
    lines += ["", f"slow connections the server closed and the bench reopened: {slow.reopened}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out")))
