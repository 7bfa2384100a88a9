"""``regpipe-models`` on a local folder and on S3 (moto's server on 127.0.0.1, root conftest)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_common import registry, storage
from regpipe_common.bundle import load_bundle, publish_bundle
from regpipe_common.models_cli import main

BIN = Path(sys.executable).parent


def model(seed: int) -> Pipeline:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 2))
    y = x @ [1.0, 2.0] + seed
    return Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor())]).fit(x, y)


def meta(r2: float) -> dict:
    return {
        "features": ["a", "b"],
        "target": "y",
        "metrics": {"rmse": 1.0, "mae": 1.0, "r2": r2, "rows": 10},
        "optimum": {"r2": 0.99},
        "params": {},
        "dataset_fingerprint": "f",
        "feature_stats": {f: {"count": 300, "mean": 0.0, "var": 1.0} for f in ("a", "b")},
        "target_stats": {"name": "y", "count": 300, "mean": 0.0, "var": 5.0},
    }


def cli(models: str, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--models", models, *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(params=["local", "s3"])
def models(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "models")
    request.getfixturevalue("s3_env")
    import s3fs

    bucket = f"models-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    s3fs.S3FileSystem().mkdir(bucket)
    return f"s3://{bucket}/models"


def publish_three(models: str) -> list[str]:
    """v1, v2, v3 published and promoted in turn (r2 0.5, 0.6, 0.7)."""
    return [publish_bundle(models, "m", model(i), meta(0.5 + i / 10)) for i in range(3)]


def latest(models: str) -> str | None:
    return registry.read_latest(storage.join(models, "m"))


def test_list_table_and_json(models: str) -> None:
    v1, v2, v3 = publish_three(models)
    code, out, _ = cli(models, "list", "m", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["latest"] == v3 and doc["rollback_to"] == v2
    assert [r["version"] for r in doc["versions"]] == [v1, v2, v3]
    assert [r["test_r2"] for r in doc["versions"]] == [0.5, 0.6, 0.7]
    assert [r["latest"] for r in doc["versions"]] == [False, False, True]
    assert all(r["created_at"] for r in doc["versions"])
    code, out, _ = cli(models, "list", "m")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["VERSION", "CREATED", "TEST", "R2", "LATEST"]
    assert lines[3].startswith(v3) and lines[3].split()[2:] == ["0.700000", "*"]
    assert lines[2].split()[-1] == "previous"


def test_promote_rollback_and_history(models: str) -> None:
    v1, v2, v3 = publish_three(models)
    assert cli(models, "promote", "m", v1) == (0, f"LATEST of m: {v3} -> {v1}\n", "")
    assert latest(models) == v1
    assert load_bundle(storage.join(models, "m")).version == v1
    # Rolling back undoes the promotion, then goes further back in promotion order.
    assert cli(models, "rollback", "m")[1] == f"LATEST of m: {v1} -> {v3}\n"
    assert cli(models, "rollback", "m")[1] == f"LATEST of m: {v3} -> {v2}\n"
    assert cli(models, "rollback", "m")[1] == f"LATEST of m: {v2} -> {v1}\n"
    code, _, err = cli(models, "rollback", "m")
    assert code == 2 and "no earlier promoted version" in err and latest(models) == v1
    history = registry.read_history(storage.join(models, "m"))
    assert [(h["action"], h["version"]) for h in history] == [
        ("publish", v1),
        ("publish", v2),
        ("publish", v3),
        ("promote", v1),
        ("rollback", v3),
        ("rollback", v2),
        ("rollback", v1),
    ]
    assert history[3]["previous"] == v3


def test_promote_refuses_unknown_or_broken_versions(models: str) -> None:
    v1, _, v3 = publish_three(models)
    code, _, err = cli(models, "promote", "m", "20990101T000000000000Z-ffffff")
    assert code == 2 and "no version '20990101T000000000000Z-ffffff'" in err
    code, _, err = cli(models, "promote", "m", "../x")
    assert code == 2 and latest(models) == v3
    code, _, err = cli(models, "promote", "../etc", v1)
    assert code == 2 and "plain folder name" in err
    fs, path = storage.filesystem(storage.join(models, "m", v1, "model.joblib"))
    fs.pipe_file(path, b"not the model")
    code, _, err = cli(models, "promote", "m", v1)
    assert code == 2 and "sha256" in err and latest(models) == v3
    code, _, err = cli(models, "verify", "m", v1)
    assert code == 2 and "sha256" in err


def test_verify(models: str) -> None:
    v1, _, v3 = publish_three(models)
    code, out, _ = cli(models, "verify", "m")
    assert code == 0 and out.startswith(f"ok m/{v3}: sha256 ") and "probe prediction" in out
    code, out, _ = cli(models, "verify", "m", v1)
    assert code == 0 and f"m/{v1}" in out


def test_rollback_in_a_store_from_before_the_history_log(models: str) -> None:
    v1, v2, v3 = publish_three(models)
    root = storage.join(models, "m")
    fs, path = storage.filesystem(storage.join(root, registry.HISTORY_FILE))
    fs.rm(path)  # as published before the log existed: every publish moved LATEST
    assert cli(models, "rollback", "m")[1] == f"LATEST of m: {v3} -> {v2}\n"
    assert cli(models, "rollback", "m")[1] == f"LATEST of m: {v2} -> {v1}\n"
    assert cli(models, "rollback", "m")[0] == 2 and latest(models) == v1


def test_prune_keeps_latest_and_the_one_before(models: str) -> None:
    versions = publish_three(models) + publish_three(models)
    root = storage.join(models, "m")
    cli(models, "promote", "m", versions[1])  # LATEST = v2, rollback target = v6
    code, out, _ = cli(models, "prune", "m", "--keep", "2")
    assert code == 0 and out.startswith("removed 3 version(s)")
    assert registry.version_names(root) == [versions[1], versions[4], versions[5]]
    code, out, _ = cli(models, "prune", "m", "--keep", "0")
    assert registry.version_names(root) == [versions[1], versions[5]]
    assert cli(models, "rollback", "m")[0] == 0 and latest(models) == versions[5]
    assert cli(models, "prune", "m", "--keep", "-1")[0] == 2


def test_console_script_is_installed(tmp_path: Path) -> None:
    models = str(tmp_path / "models")
    v1 = publish_bundle(models, "m", model(0), meta(0.5))
    done = subprocess.run(
        [str(BIN / "regpipe-models"), "--models", models, "list", "m", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["latest"] == v1
    missing = subprocess.run(
        [str(BIN / "regpipe-models"), "list", "m"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and "--models (TRAIN_MODELS) is required" in missing.stderr
