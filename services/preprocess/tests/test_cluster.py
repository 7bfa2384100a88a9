"""The same command on a real multi-process Dask cluster gives the same dataset."""

from __future__ import annotations

import filecmp
import json

import pytest


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
