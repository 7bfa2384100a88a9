"""``LOG_FORMAT=json``: every line the services print is a JSON object, gunicorn's own included,
and the batch jobs log where their Dask dashboard is. Real processes, real output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flights import flights_csv, preprocess_cmd, run_job, train_cmd
from net import serve_predict

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
    data = tmp_path_factory.mktemp("json-logs")
    csv = flights_csv(data, SAMPLE_ROWS)
    env = {**os.environ, "LOG_FORMAT": "json", "DASK_N_WORKERS": "1"}
    env.pop("PUSHGATEWAY_URL", None)
    return {
        "data": data,
        "preprocess": run_job(preprocess_cmd(csv, data / "prepared"), env),
        "train": run_job(train_cmd(data / "prepared", data / "models", "--epochs", "1"), env),
        "failed": run_job(preprocess_cmd(data / "missing.csv", data / "other"), env, ok=False),
    }


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


@pytest.mark.parametrize("access_log", [True, False])
def test_gunicorn_and_the_app_print_only_json(jobs: dict, tmp_path: Path, access_log) -> None:
    """gunicorn's own lines are JSON records; request lines only with ACCESS_LOG (gunicorn
    logs every request to its access logger whenever a logconfig_dict is set)."""
    env = {"GRACEFUL_TIMEOUT": "5", "ACCESS_LOG": str(access_log).lower(), "LOG_FORMAT": "json"}
    with serve_predict(jobs["data"] / "models" / "flights", tmp_path, **env) as server:
        server.wait("/readyz")
        bad = server.post("/predict", json={"instances": [{"x": 1}]})
        assert 400 <= bad.status_code < 500, bad.text
    docs = records(server.log.read_text(), "predict stdout and stderr")
    loggers = {d["logger"] for d in docs}
    assert "gunicorn.error" in loggers, loggers  # "Starting gunicorn", "Booting worker", ...
    assert any("Listening at" in d["msg"] for d in docs)
    access = [d for d in docs if d["logger"] == "gunicorn.access"]
    if access_log:
        assert any("/predict" in d["msg"] for d in access), access
    else:
        assert not access, access


def test_plain_lines_become_records() -> None:
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
