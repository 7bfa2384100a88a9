"""The service on models in object storage (moto's S3 server on 127.0.0.1), under gevent workers:
it loads, serves, hot-reloads a newly published version, and drains on SIGTERM."""

from __future__ import annotations

from pathlib import Path

from predict_helpers import FEATURES, NAME, make_model, metadata, serve

from regpipe_common.bundle import publish_bundle


def test_serves_and_hot_reloads_a_model_in_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    import s3fs

    s3fs.S3FileSystem().mkdir("regpipe-predict")
    models = "s3://regpipe-predict/models"
    first = publish_bundle(models, NAME, make_model(0), metadata(make_model(0)))
    row = {"instances": [dict.fromkeys(FEATURES, 1.0)]}
    with serve(f"{models}/{NAME}", tmp_path, **s3_env) as server:
        server.wait_loaded(first)
        assert server.post("/predict", json=row).json()["model"]["version"] == first
        second = publish_bundle(models, NAME, make_model(1), metadata(make_model(1)))
        server.wait_loaded(second)
        answer = server.post("/predict", json=row)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == second
        assert server.get("/readyz").status_code == 200
