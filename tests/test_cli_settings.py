"""Every console script: ``--version``, ``--help`` and one style of message for a bad setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SCRIPTS = [
    "regpipe-preprocess",
    "regpipe-train",
    "regpipe-score",
    "regpipe-predict",
    "regpipe-models",
]


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / script), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_on_every_script(script: str) -> None:
    done = run(script, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{script} "), done.stdout
    assert "numpy==" in done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_version_into_a_closed_pipe_exits_0_without_a_traceback(script: str) -> None:
    """``--version | head -1``: the reader may be gone before the versions are written."""
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE
    try:
        done = subprocess.run(
            [str(BIN / script), "--version"], stdout=write, stderr=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(write)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr and b"error" not in done.stderr.lower()


def test_predict_help_prints_help_and_exits_0() -> None:
    done = run("regpipe-predict", "--help", env={"MODEL_URI": "/nonexistent/model"})
    assert done.returncode == 0, done.stderr
    assert "usage: regpipe-predict" in done.stdout
    assert "MODEL_URI" in done.stdout and "WEB_CONCURRENCY" in done.stdout


def test_bad_preprocess_seed_names_flag_and_variable(tmp_path: Path) -> None:
    env = {
        "PREPROCESS_INPUT": str(tmp_path / "in.csv"),
        "PREPROCESS_SPEC": str(tmp_path / "spec.yaml"),
        "PREPROCESS_OUTPUT": str(tmp_path / "out"),
        "PREPROCESS_SEED": "abc",
    }
    done = run("regpipe-preprocess", env=env)
    assert done.returncode == 2
    assert "--seed" in done.stderr and "PREPROCESS_SEED" in done.stderr and "'abc'" in done.stderr
    assert "invalid literal" not in done.stderr
    assert "Traceback" not in done.stderr
