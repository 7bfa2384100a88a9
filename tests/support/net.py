"""Process and loopback helpers that the tests and the benchmarks share: a command run to the
end, a free port, waiting for a condition, a server process started, awaited and stopped, and
a real ``regpipe-predict``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, seconds: float, every: float = 0.5) -> None:
    """Call ``check`` until it returns true; an OSError (not listening yet) counts as false.

    ``requests``' exceptions are OSErrors too. Raises TimeoutError naming ``what``.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds}s waiting for {what}")


def run(
    cmd: list[str | Path],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``cmd`` run to the end with its output captured as text (the caller checks the code)."""
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    """A readiness check: ``GET url`` answers ``status``."""
    return lambda: requests.get(url, timeout=2).status_code == status


def listening(port: int) -> Callable[[], bool]:
    """A readiness check: something accepts TCP connections on 127.0.0.1:``port``."""

    def check() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    return check


def tail(log: Path | None, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log and log.exists() else ""


def stop(proc: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM, then SIGKILL if the process is still there after ``seconds``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running(
    cmd: list[str],
    ready: Callable[[], bool],
    what: str,
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    seconds: float = 90,
    every: float = 0.2,
    stop_seconds: float = 30,
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` (stdout and stderr to ``log``, or nowhere), wait until ``ready()``, yield
    the process; stopped on exit. A process that exits or never gets ready fails with its log."""
    with open(log or os.devnull, "wb") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
        )

    def check() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        return ready()

    try:
        try:
            wait_for(check, what, seconds, every)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{tail(log)}") from None
        yield proc
    finally:
        stop(proc, stop_seconds)


class Server:
    """A running ``regpipe-predict``: its process, port, URL and log file."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kw)

    def wait(self, path: str = "/healthz", status: int = 200, seconds: float = 90.0) -> None:
        """Until ``GET path`` answers ``status`` (AssertionError with the log if it never does)."""

        def check() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {tail(self.log)}")
            return answers(self.url + path, status)()

        try:
            wait_for(check, f"{path} to answer {status}", seconds, every=0.1)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {tail(self.log)}") from None

    def wait_loaded(self, version: str, workers: int = 2, seconds: float = 90.0) -> None:
        """Until every worker logged that it loaded ``version``."""
        loaded = re.compile(rf"model loaded name=\S+ version={re.escape(version)}\b")
        try:
            wait_for(
                lambda: len(loaded.findall(self.log.read_text())) >= workers,
                f"{workers} workers to load {version}",
                seconds,
                every=0.1,
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {tail(self.log)}") from None


@contextmanager
def serve_predict(model_uri: Path | str, tmp: Path, **env: str) -> Iterator[Server]:
    """``regpipe-predict`` (two workers) on a free 127.0.0.1 port, once ``/healthz`` answers;
    SIGTERM (then SIGKILL) on exit. ``env`` overrides the defaults below."""
    port = free_port()
    full_env = {
        "MODEL_URI": str(model_uri),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "MODEL_POLL_INTERVAL": "0.2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prom-{port}"),
        "GRACEFUL_TIMEOUT": "10",
        **env,
    }
    log = tmp / f"server-{port}.log"
    url = f"http://127.0.0.1:{port}/healthz"
    cmd = [str(BIN / "regpipe-predict")]
    with running(cmd, answers(url), "regpipe-predict", env=full_env, log=log) as proc:
        yield Server(proc, port, log)
