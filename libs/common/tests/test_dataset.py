"""The prepared-dataset contract: publishing a version, the pointer, both layouts, cleanup."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regpipe_common import dataset, storage

STATS = {"count": 2, "mean": 1.0, "var": 0.25, "min": 0.5, "max": 1.5}


def manifest(rows: int = 2) -> dict:
    return {
        "format": dataset.FORMAT,
        "features": {"x": dict(STATS)},
        "target": {"name": "y", **STATS},
        "splits": {
            "train": [{"path": "train/part-00000.parquet", "rows": rows}],
            "test": [{"path": "test/part-00000.parquet", "rows": 1}],
        },
        "fingerprint": "f" * 64,
        "rejected": dataset.REJECTED,
    }


def stage(url: str, marker: str) -> str:
    version_url = dataset.new_version_url(url)
    for name in ("train/part-00000.parquet", "test/part-00000.parquet", dataset.REJECTED):
        storage.write_text_atomic(storage.join(version_url, name), marker)
    return version_url


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_published_version_is_read_through_the_pointer(tmp_path, scheme):
    url = f"{scheme}{tmp_path}/ds"
    first = stage(url, "v1")
    dataset.publish_version(url, first, manifest())
    second = stage(url, "v2")
    # Staged but unpublished: readers still see the first version, whole.
    doc = dataset.read_manifest(url)
    assert doc["version"] == dataset.version_of(first)
    assert storage.read_text(dataset.part_url(url, doc["splits"]["train"][0])) == "v1"
    published = dataset.publish_version(url, second, manifest())
    doc = dataset.read_manifest(url)
    assert doc == published and doc["version"] == dataset.version_of(second)
    assert storage.read_text(dataset.part_url(url, doc["splits"]["test"][0])) == "v2"
    assert storage.read_text(storage.join(url, doc["rejected"])) == "v2"
    assert doc["previous_version"] == dataset.version_of(first)
    assert names(tmp_path / "ds") == sorted(
        ["manifest.json", doc["version"], doc["previous_version"]]
    )


def test_a_reader_of_the_replaced_version_keeps_its_files_until_the_next_run(tmp_path):
    """A train job that loaded the manifest just before a new version was published reads the
    old version's parts after it; they stay until the run after that (and a cleanup between
    runs keeps them too)."""
    url = str(tmp_path / "ds")
    dataset.publish_version(url, stage(url, "v1"), manifest())
    reader = dataset.read_manifest(url)
    dataset.publish_version(url, stage(url, "v2"), manifest())
    dataset.remove_stale(url)  # what the next preprocess run does first
    assert storage.read_text(dataset.part_url(url, reader["splits"]["train"][0])) == "v1"
    third = dataset.publish_version(url, stage(url, "v3"), manifest())
    assert reader["version"] not in names(tmp_path / "ds")
    assert names(tmp_path / "ds") == sorted(
        ["manifest.json", third["version"], third["previous_version"]]
    )


def test_a_flat_layout_still_loads_and_is_kept_until_replaced(tmp_path):
    url = str(tmp_path / "ds")
    for name in ("train/part-00000.parquet", "test/part-00000.parquet"):
        storage.write_text_atomic(storage.join(url, name), "flat")
    doc = manifest()
    doc.pop("rejected")
    storage.write_text_atomic(storage.join(url, "manifest.json"), json.dumps(doc))
    (tmp_path / "ds" / "20261126T071500123456Z-1a2b3c").mkdir()  # left by a killed run
    assert dataset.remove_stale(url)
    assert names(tmp_path / "ds") == ["manifest.json", "test", "train"]
    loaded = dataset.read_manifest(url)
    assert storage.read_text(dataset.part_url(url, loaded["splits"]["train"][0])) == "flat"
    dataset.publish_version(url, stage(url, "v1"), manifest())
    assert "train" not in names(tmp_path / "ds") and len(names(tmp_path / "ds")) == 2


def test_unknown_files_and_old_staging_siblings(tmp_path):
    url = str(tmp_path / "ds")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "README.txt").write_text("mine")
    (tmp_path / "ds.staging-0123456789ab" / "train").mkdir(parents=True)  # an older release's
    dataset.publish_version(url, stage(url, "v1"), manifest())
    assert "README.txt" in names(tmp_path / "ds")
    assert names(tmp_path) == ["ds"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("splits"), "missing key(s) splits"),
        (lambda d: d.update(format="other/2"), "is not 'regpipe-dataset/1'"),
        (lambda d: d["features"]["x"].update(var=float("nan")), "non-finite statistic"),
        (lambda d: d["splits"]["test"].append({"rows": 3}), "test partition #1 lacks"),
    ],
)
def test_a_bad_manifest_names_the_problem(tmp_path, edit, message):
    doc = manifest()
    edit(doc)
    storage.write_text_atomic(str(tmp_path / "manifest.json"), json.dumps(doc))
    with pytest.raises(
        dataset.ManifestError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        dataset.read_manifest(str(tmp_path))


def test_a_missing_manifest_says_so(tmp_path):
    with pytest.raises(dataset.ManifestError, match="not found"):
        dataset.read_manifest(str(tmp_path))
