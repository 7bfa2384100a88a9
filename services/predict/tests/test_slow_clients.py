"""Slow clients and SIGTERM under keep-alive load, against a real ``regpipe-predict``."""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from predict_helpers import BIN, NAME, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for bench/
from bench.slow_clients import SlowClients, normal_client

ROW = {"inputs": [[12.0, 1000.0, 150.0, 13.0, 6.5]]}


@pytest.mark.slow
def test_slow_clients_do_not_starve_a_normal_client(models: Path, tmp_path: Path) -> None:
    """40 connections trickling headers or a body byte by byte (gthread: 4 threads, all stuck)."""
    version = (models / NAME / "LATEST").read_text().strip()
    with serve(models / NAME, tmp_path) as srv:
        srv.wait_loaded(version)
        url = srv.url + "/predict"
        normal_client(url, ROW, seconds=5, count=20, timeout=2)  # warm up
        alone = normal_client(url, ROW, seconds=20, count=100, timeout=2)
        with SlowClients(srv.port, 40, interval=0.2, max_seconds=60):
            time.sleep(1.0)  # every slow connection accepted and in its request
            loaded = normal_client(url, ROW, seconds=20, count=100, timeout=2)
    assert None not in alone, alone
    assert loaded.count(None) == 0 and len(loaded) == 100, f"{loaded.count(None)} failed"
    assert max(loaded) < 2.0
    # sequential requests: throughput is 1 / latency; medians, as other load on the machine
    # comes and goes during the test
    ratio = statistics.median(alone) / statistics.median(loaded)
    assert ratio >= 0.5, f"throughput with slow clients is {ratio:.2f}x of alone"


def keep_alive_client(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """One-row POSTs on one HTTP/1.1 connection, reconnecting after ``Connection: close``.

    Appends ``ok``, ``closed`` (a 200 that announced the close), ``refused`` (no server to
    reconnect to: it is gone, or a new connection that raced the listener's close: TCP resets a
    connection still in the accept queue when the last listener closes, and no server can
    prevent that), or the name of any other error. A kept-alive connection that had already
    been answered must never be reset. Bounded in count and by ``stop``.
    """
    body = b'{"inputs": [[12.0, 1000.0, 150.0, 13.0, 6.5]]}'
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    fresh = True  # the next request opens a new connection
    for _ in range(20_000):
        if stop.is_set():
            break
        try:
            conn.request("POST", "/predict", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        except ConnectionRefusedError:
            outcomes.append("refused")
            break
        except ConnectionResetError:
            outcomes.append("refused" if fresh else "ConnectionResetError")
            break
        except (OSError, http.client.HTTPException) as exc:
            outcomes.append(type(exc).__name__)
            break
        fresh = False
        if response.status != 200:
            outcomes.append(f"status {response.status}")
            break
        if response.getheader("Connection", "").lower() == "close":
            outcomes.append("closed")
            conn.close()
            fresh = True
        else:
            outcomes.append("ok")
    conn.close()


@pytest.mark.slow
def test_sigterm_under_keep_alive_load_resets_no_connection(models: Path, tmp_path: Path) -> None:
    """Clients sending back to back while the server drains: each sees a clean close, no reset."""
    version = (models / NAME / "LATEST").read_text().strip()
    for attempt in range(2):  # two drains: a reset that happens one time in two shows
        outcomes: list[list[str]] = [[] for _ in range(8)]
        stop = threading.Event()
        (tmp_path / str(attempt)).mkdir()
        with serve(models / NAME, tmp_path / str(attempt)) as srv:
            srv.wait_loaded(version)
            threads = [
                threading.Thread(target=keep_alive_client, args=(srv.port, stop, out))
                for out in outcomes
            ]
            for t in threads:
                t.start()
            time.sleep(1.5)
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(timeout=60) == 0
            stop.set()
            for t in threads:
                t.join(timeout=30)
        for out in outcomes:
            assert out.count("ok") > 10, out[-5:]
            errors = [o for o in out if o not in ("ok", "closed", "refused")]
            assert not errors, f"attempt {attempt}: {errors}; last outcomes {out[-5:]}"


def test_worker_class_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from regpipe_common.errors import RegpipeError
    from regpipe_predict.settings import from_env

    monkeypatch.setenv("MODEL_URI", str(tmp_path))
    assert (from_env().worker_class, from_env().worker_connections) == ("gevent", 1000)
    monkeypatch.setenv("WORKER_CLASS", "gthread")
    assert from_env().worker_class == "gthread"
    monkeypatch.setenv("WORKER_CLASS", "sync")
    with pytest.raises(
        RegpipeError, match="--worker-class / WORKER_CLASS='sync' is not one of: gevent, gthread"
    ):
        from_env()
    monkeypatch.setenv("WORKER_CLASS", "gevent")
    monkeypatch.setenv("WORKER_CONNECTIONS", "0")
    with pytest.raises(
        RegpipeError, match="--worker-connections / WORKER_CONNECTIONS='0' must be at least 1"
    ):
        from_env()
    env = {**os.environ, "WORKER_CONNECTIONS": "1", "WORKER_CLASS": "eventlet"}
    done = subprocess.run(
        [str(BIN / "regpipe-predict")], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "WORKER_CLASS='eventlet' is not one of" in done.stderr
    assert "Traceback" not in done.stderr
