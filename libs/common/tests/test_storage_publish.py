"""fsspec URLs and atomic publishing."""

from __future__ import annotations

import json

import pytest

from regpipe_common import publish, storage


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_local_paths_and_file_urls_behave_the_same(tmp_path, scheme):
    url = f"{scheme}{tmp_path}/a/b.txt"
    storage.write_text_atomic(url, "hello")
    assert storage.read_text(url) == "hello"
    assert storage.exists(url)
    assert storage.join(f"{scheme}{tmp_path}/", "x", "y") == f"{scheme}{tmp_path}/x/y"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.txt"]  # no temp file left


def test_publish_replaces_a_folder_and_writes_the_manifest_last(tmp_path):
    target = str(tmp_path / "ds")
    for version in (1, 2):
        with publish.staging_folder(target) as staging:
            storage.write_text_atomic(storage.join(staging, "part", "x.txt"), f"v{version}")
            assert not (tmp_path / "ds" / "manifest.json").exists() or version == 2
            publish.publish_folder(staging, target, {"version": version})
        assert json.loads((tmp_path / "ds" / "manifest.json").read_text()) == {"version": version}
        assert (tmp_path / "ds" / "part" / "x.txt").read_text() == f"v{version}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_failed_staging_is_removed_and_target_untouched(tmp_path):
    target = str(tmp_path / "ds")
    with pytest.raises(RuntimeError), publish.staging_folder(target) as staging:
        storage.write_text_atomic(storage.join(staging, "x"), "partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
