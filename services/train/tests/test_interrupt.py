"""Real ``regpipe-train`` processes killed with SIGKILL: LATEST stays whole, --resume goes on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from regpipe_common.bundle import load_bundle
from regpipe_common.safe_pickle import safe_joblib_loads

BIN = Path(sys.executable).parent
# Small batches make each epoch long enough to be killed in the middle of the run.
SLOW = ["--epochs", "8", "--patience", "100", "--batch-size", "20"]


def _start(data: Path, models: Path, *flags: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAIN_")}
    env.update(DASK_N_WORKERS="2", LOG_LEVEL="INFO")
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    cmd = [str(BIN / "regpipe-train"), "--data", str(data), "--models", str(models)]
    return subprocess.Popen(
        [*cmd, "--name", "m", *flags], env=env, stderr=subprocess.PIPE, text=True
    )


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before the kill"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    proc.stderr.close()


@pytest.mark.slow
def test_killed_run_keeps_latest_and_resume_matches_an_uninterrupted_run(
    make_dataset, train, tmp_path
):
    data = make_dataset(20_000)
    models = tmp_path / "models"
    before = train(data, "--epochs", "1", models=models)  # a previous version to keep
    old = before.latest
    assert old

    proc = _start(data, models, *SLOW)
    checkpoints = models / "m" / ".checkpoints"
    try:
        _wait_for(lambda: any(checkpoints.rglob("state.joblib")), proc)
    finally:
        _kill(proc)

    # LATEST still names the previous, whole bundle; nothing new was published.
    assert before.latest == old
    assert load_bundle(str(models / "m")).version == old
    assert sorted(p.name for p in (models / "m").iterdir() if not p.name.startswith(".")) == [
        old,
        "HISTORY.jsonl",
        "LATEST",
    ]
    (state_file,) = checkpoints.rglob("state.joblib")
    saved = safe_joblib_loads(state_file.read_bytes())["state"]
    assert 1 <= saved["epochs_done"] < 8

    resumed = train(data, *SLOW, "--resume", models=models)
    reference = train(data, *SLOW, name="reference", models=tmp_path / "reference")
    assert resumed.code == 0 and resumed.latest != old
    history = resumed.metadata["params"]["history"]
    # The resumed run kept the killed run's epochs (their timings) instead of starting over.
    assert history[: saved["epochs_done"]] == saved["history"]
    assert len(history) == 8
    np.testing.assert_allclose(resumed.coef(), reference.coef(), rtol=1e-12, atol=0)
    assert resumed.metadata["metrics"]["r2"] == pytest.approx(
        reference.metadata["metrics"]["r2"], abs=1e-12
    )
    assert not any(checkpoints.rglob("state.joblib"))


@pytest.mark.slow
def test_killed_while_publishing_leaves_old_or_new_whole_bundle(make_dataset, train, tmp_path):
    data = make_dataset(20_000)
    models = tmp_path / "models"
    old = train(data, "--epochs", "1", models=models).latest
    proc = _start(data, models, "--epochs", "2")
    try:
        for line in proc.stderr:
            if "publishing bundle" in line:
                break
    finally:
        _kill(proc)
    latest = (models / "m" / "LATEST").read_text().strip()
    assert latest == old or latest > old
    bundle = load_bundle(str(models / "m"))
    assert bundle.version == latest
    # Any version folder with metadata is whole: it loads and verifies.
    for folder in (models / "m").iterdir():
        if (folder / "metadata.json").exists():
            assert load_bundle(str(folder)).version == folder.name


def test_cli_process_exit_codes(copy_dataset, tmp_path):
    data = copy_dataset(20_000)
    (data / "manifest.json").unlink()
    proc = _start(data, tmp_path / "models")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("regpipe-train: error: ")
    assert "manifest.json not found" in err
    assert "Traceback" not in err
    assert not (tmp_path / "models" / "m" / "LATEST").exists()


def test_resume_refuses_a_crafted_checkpoint_without_running_it(make_dataset, tmp_path):
    """A checkpoint is read through the model allowlist: a gadget in it never runs."""
    from pickle_attacks import eval_via_sklearn, write_marker

    from regpipe_train.checkpoint import STATE_FILE, checkpoint_url
    from regpipe_train.settings import TrainSettings

    data = make_dataset(20_000)
    models = tmp_path / "models"
    marker = tmp_path / "pwned"
    fingerprint = json.loads((data / "manifest.json").read_text())["fingerprint"]
    settings = TrainSettings(data=str(data), models=str(models), name="m")
    state = Path(checkpoint_url(settings, fingerprint)) / STATE_FILE
    state.parent.mkdir(parents=True)
    state.write_bytes(eval_via_sklearn(write_marker(marker)))
    proc = _start(data, models, "--resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert "refused to unpickle" in err and "not allowed in a model file" in err
    assert "Traceback" not in err
    assert not marker.exists()
    assert not (models / "m" / "LATEST").exists()
