"""Atomic publishing: a killed job never leaves a manifest over a partial dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest


def start_job(src, spec, out) -> subprocess.Popen:
    env = {**os.environ, "PREPROCESS_PROGRESS_INTERVAL": "60"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "regpipe_preprocess",
            "--input",
            str(src),
            "--spec",
            str(spec),
            "--output",
            str(out),
            "--blocksize",
            "32KiB",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for_parts(tmp_path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(tmp_path.glob("out.staging-*/train/*.parquet"))) >= 3:
            return
        time.sleep(0.02)
    pytest.fail("the job never started writing")


def test_killed_job_leaves_no_manifest_and_keeps_the_previous_dataset(pp, tmp_path, spec_file):
    out = tmp_path / "out"
    small = pp.write_csv(tmp_path / "small.csv", pp.rows(500))
    assert pp.run("--input", small, "--spec", spec_file, "--output", out) == 0
    before = pp.manifest(out)

    big = pp.write_csv(tmp_path / "big.csv", pp.rows(300_000))
    job = start_job(big, spec_file, out)
    wait_for_parts(tmp_path)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)

    # The previous dataset is still whole and still the one its manifest describes.
    assert pp.manifest(out) == before
    train = pd.concat(pd.read_parquet(out / p["path"]) for p in before["splits"]["train"])
    assert len(train) == before["rows_train"]

    fresh = tmp_path / "fresh"
    job = start_job(big, spec_file, fresh)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("fresh.staging-*/train/*.parquet")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    assert not (fresh / "manifest.json").exists()
