"""The same command on a real multi-process Dask cluster gives the same dataset."""

from __future__ import annotations

import filecmp
import json

import pytest
import yaml


@pytest.mark.cluster
def test_output_identical_on_a_real_cluster(
    pp, tmp_path, spec_file, monkeypatch, dask_scheduler_address
):
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(20_000))
    args = ("--input", src, "--spec", spec_file, "--blocksize", "64KiB")
    assert pp.run(*args, "--output", tmp_path / "local") == 0
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_scheduler_address)
    assert pp.run(*args, "--output", tmp_path / "cluster") == 0

    local, cluster = (
        json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("local", "cluster")
    )
    folders = {
        d: tmp_path / d / m.pop("version") for d, m in (("local", local), ("cluster", cluster))
    }
    for m in (local, cluster):
        m.pop("created_at")
        for entries in m["splits"].values():
            for e in entries:
                e["path"] = e["path"].split("/", 1)[1]  # relative to the version folder
    assert local == cluster
    assert len(local["splits"]["train"]) > 5
    for split in ("train", "test"):
        names = sorted(p.name for p in (folders["local"] / split).iterdir())
        match, mismatch, errors = filecmp.cmpfiles(
            folders["local"] / split, folders["cluster"] / split, names, shallow=False
        )
        assert match == names, (mismatch, errors)


@pytest.mark.cluster
def test_category_manifest_identical_on_a_real_cluster(
    pp, tmp_path, monkeypatch, dask_scheduler_address
):
    """Level counts merged across worker processes equal the in-process ones."""
    spec = {**pp.spec, "features": ["a", "group", "b", "n"]}
    spec["columns"] = [
        {"name": "group", "type": "category", "max_categories": 2} if c["name"] == "group" else c
        for c in spec["columns"]
    ]
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    lines = pp.rows(20_000)
    lines[7] = "7,,1.0,2.0,1,3.0"  # a missing level: dropped
    src = pp.write_csv(tmp_path / "in.csv", lines)
    args = ("--input", src, "--spec", spec_file, "--blocksize", "64KiB")
    assert pp.run(*args, "--output", tmp_path / "local") == 0
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_scheduler_address)
    assert pp.run(*args, "--output", tmp_path / "cluster") == 0
    local, cluster = (pp.manifest(tmp_path / d) for d in ("local", "cluster"))
    assert len(local["splits"]["train"]) > 5 and local["rows_dropped_missing"] == 1
    for key in ("categories", "feature_order", "features", "fingerprint", "rows_train"):
        assert local[key] == cluster[key], key
    group = local["categories"]["group"]
    assert group["count"] == local["rows_train"] and group["distinct"] == 3
    assert len(group["kept"]) == 2 and 0.2 < group["infrequent_share"] < 0.45
