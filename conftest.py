"""Fixtures shared by every package's tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
# Test support modules every package's tests may import (free ports, crafted pickles, ...),
# and the repository root for the benchmark's generators (``bench.datagen``, ...).
sys.path.insert(0, str(Path(__file__).parent / "tests" / "support"))
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from net import free_port, listening, running, stop, wait_for  # noqa: E402


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A local S3 API (moto's server) on 127.0.0.1; yields the environment that points at it."""
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with running(cmd, listening(port), "moto server", seconds=60, stop_seconds=20):
        yield {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> dict[str, str]:
    """Point this test's boto/s3fs clients at the local S3 server."""
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    return s3_server


def _wait_for_workers(address: str, n: int, timeout: float = 60) -> None:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(n, timeout=timeout)


@pytest.fixture(scope="session")
def dask_scheduler_address(tmp_path_factory) -> Iterator[str]:
    """A real multi-process Dask cluster on 127.0.0.1: `dask scheduler` + two `dask worker`s."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    stack = contextlib.ExitStack()
    log = lambda name: stack.enter_context((logs / name).open("w"))  # noqa: E731
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            stdout=log("scheduler.log"),
            stderr=subprocess.STDOUT,
            env=env,
        )
    ]
    try:
        wait_for(listening(port), "the dask scheduler", 60, every=0.2)
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                        "--local-directory",
                        str(logs / f"w{i}"),
                    ],
                    stdout=log(f"worker{i}.log"),
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            )
        _wait_for_workers(address, 2)
        yield address
    finally:
        for p in reversed(procs):
            stop(p, 20)
        stack.close()
        shutil.rmtree(logs, ignore_errors=True)
