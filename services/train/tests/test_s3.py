"""Dataset, checkpoints and model bundle on S3 (moto's server on 127.0.0.1, root conftest)."""

from __future__ import annotations

import json

import numpy as np


def test_train_from_and_to_s3(make_dataset, train, s3_env):
    import s3fs

    from regpipe_common.bundle import load_bundle

    data = make_dataset(20_000)
    fs = s3fs.S3FileSystem()
    fs.mkdir("regpipe-train")
    fs.put(str(data), "regpipe-train/data", recursive=True)
    local = train(data, "--epochs", "2", name="local")
    remote = train("s3://regpipe-train/data", "--epochs", "2", models="s3://regpipe-train/models")
    assert remote.code == 0
    fs.invalidate_cache()
    latest = fs.cat("regpipe-train/models/m/LATEST").decode().strip()
    meta = json.loads(fs.cat(f"regpipe-train/models/m/{latest}/metadata.json"))
    assert meta["metrics"] == local.metadata["metrics"]
    bundle = load_bundle("s3://regpipe-train/models/m")
    assert bundle.version == latest
    np.testing.assert_array_equal(bundle.model[-1].coef_, local.coef()[:-1])
    assert not fs.glob("regpipe-train/models/m/.checkpoints/*/state.joblib")
