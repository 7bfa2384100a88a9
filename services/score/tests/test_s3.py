"""Input, model and scores on S3 (moto's server on 127.0.0.1, root conftest)."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq


def test_score_from_and_to_s3(pipeline, score, helpers, s3_env, tmp_path):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("regpipe-score")
    fs.put(str(pipeline.prepared), "regpipe-score/prepared", recursive=True)
    fs.put(str(pipeline.models), "regpipe-score/models", recursive=True)
    local = tmp_path / "local"
    assert score("--input", pipeline.prepared / "test", "--model", pipeline.models / "m",
                 "--output", local)[0] == 0  # fmt: skip
    code, _, err = score(
        "--input", "s3://regpipe-score/prepared/test",
        "--model", f"s3://regpipe-score/models/m@{pipeline.versions[0]}",
        "--output", "s3://regpipe-score/scored",
    )  # fmt: skip
    assert code == 0, err
    fs.invalidate_cache()
    manifest = json.loads(fs.cat("regpipe-score/scored/manifest.json"))
    assert manifest["model"]["version"] == pipeline.versions[0]
    assert manifest["rows_scored"] == pipeline.manifest["rows_test"]
    assert not fs.glob("regpipe-score/scored.staging-*")
    local_manifest, _ = helpers.read_output(local)
    assert len(manifest["parts"]) == len(local_manifest["parts"])
    first = pq.read_table(
        io.BytesIO(fs.cat(f"regpipe-score/scored/{manifest['parts'][0]['path']}"))
    )
    assert first.column_names == ["id", "prediction", "y", "residual"]
    assert first.num_rows == manifest["parts"][0]["rows"]
