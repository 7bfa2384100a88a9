"""The promotion gate: every run publishes, LATEST moves only for a model that is not worse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from regpipe_common import registry
from regpipe_train.cli import NOT_PROMOTED

ROWS = 20_000
WORSE = ("--epochs", "1", "--eta0", "0.00001")  # one tiny-step epoch: test R² far below


def metadata(run, version: str) -> dict:
    return json.loads((run.model_dir / version / "metadata.json").read_text())


def newest(run) -> str:
    return registry.version_names(str(run.model_dir))[-1]


def test_a_worse_model_is_published_but_not_promoted(make_dataset, train, capsys):
    data = make_dataset(ROWS)
    good = train(data, "--epochs", "3")
    assert good.code == 0
    first = good.latest
    assert good.metadata["promotion"]["promoted"] is True
    assert good.metadata["promotion"]["reason"] == "first version of this model"

    worse = train(data, *WORSE)
    assert worse.code == NOT_PROMOTED == 3
    assert worse.latest == first  # LATEST unchanged
    version = newest(worse)
    assert version != first
    meta = metadata(worse, version)
    decision = meta["promotion"]
    assert decision["promoted"] is False and decision["forced"] is False
    assert decision["current_version"] == first
    assert decision["new_r2"] == meta["metrics"]["r2"] < 0.5
    # The current model was scored on the same test split: its metrics are the ones it
    # published when it was trained on this very dataset.
    assert decision["current_r2"] == pytest.approx(good.metadata["metrics"]["r2"], abs=1e-9)
    for key in ("rmse", "mae"):
        assert decision["current_metrics"][key] == pytest.approx(
            good.metadata["metrics"][key], rel=1e-9
        )
    assert "beyond --max-regression 0.001" in decision["reason"]
    assert "NOT promoted" in (worse.model_dir / version / "report.html").read_text()
    err = capsys.readouterr().err
    assert "regpipe-train: not promoted (LATEST unchanged): test R²" in err

    forced = train(data, *WORSE, "--force")
    assert forced.code == 0 and forced.latest == newest(forced) != first
    assert forced.metadata["promotion"]["forced"] is True
    assert forced.metadata["promotion"]["reason"].endswith("promoted anyway (--force)")
    history = registry.read_history(str(forced.model_dir))
    assert [h["version"] for h in history] == [first, forced.latest]


def test_max_regression_and_env_vars(make_dataset, train, monkeypatch):
    data = make_dataset(ROWS)
    assert train(data, "--epochs", "3").code == 0
    monkeypatch.setenv("TRAIN_MAX_REGRESSION", "1.0")
    lenient = train(data, *WORSE)
    assert lenient.code == 0 and lenient.latest == newest(lenient)
    decision = lenient.metadata["promotion"]
    assert decision["forced"] is False and decision["max_regression"] == 1.0
    assert "within --max-regression 1.0" in decision["reason"]
    monkeypatch.setenv("TRAIN_MAX_REGRESSION", "0.001")
    monkeypatch.setenv("TRAIN_FORCE", "true")
    assert train(data, *WORSE).code == 0
    assert train(data, *WORSE, "--max-regression", "-1").code == 2


def test_incompatible_features_need_force(make_dataset, dataset_writer, train, tmp_path):
    assert train(make_dataset(ROWS), "--epochs", "2").code == 0
    rng = np.random.default_rng(3)
    x = rng.normal(size=(ROWS, 5))
    y = x @ [1.0, 2.0, 3.0, 4.0, 5.0] + rng.normal(size=ROWS)
    fewer = tmp_path / "fewer"
    dataset_writer(fewer, x[:, :5], y)
    refused = train(fewer, "--epochs", "2")
    assert refused.code == NOT_PROMOTED
    decision = metadata(refused, newest(refused))["promotion"]
    assert decision["promoted"] is False and decision["current_r2"] is None
    assert "takes features" in decision["reason"]
    forced = train(fewer, "--epochs", "2", "--force")
    assert forced.code == 0 and forced.metadata["features"] == ["f00", "f01", "f02", "f03", "f04"]


def test_gate_and_report_on_s3(make_dataset, train, s3_env):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("regpipe-gate")
    models = "s3://regpipe-gate/models"
    data = make_dataset(ROWS)
    assert train(data, "--epochs", "2", models=models).code == 0
    first = registry.read_latest(f"{models}/m")
    assert train(data, *WORSE, models=models).code == NOT_PROMOTED
    assert registry.read_latest(f"{models}/m") == first
    versions = registry.version_names(f"{models}/m")
    assert len(versions) == 2 and versions[0] == first
    fs.invalidate_cache()
    meta = json.loads(fs.cat(f"regpipe-gate/models/m/{versions[1]}/metadata.json"))
    assert meta["promotion"]["promoted"] is False and meta["promotion"]["current_version"] == first
    page = fs.cat(f"regpipe-gate/models/m/{versions[1]}/report.html").decode()
    assert "NOT promoted" in page and meta["version"] in page
    assert [h["version"] for h in registry.read_history(f"{models}/m")] == [first]
