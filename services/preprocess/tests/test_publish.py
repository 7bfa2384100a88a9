"""Atomic publishing: a job killed (SIGKILL, a real process) at any moment, the publish step
included, leaves the previous dataset or the new one whole, and the next run removes what the
killed one left behind. Local paths and s3:// (moto's server on 127.0.0.1)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from regpipe_common import storage


def start_job(src, spec, out, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "PREPROCESS_PROGRESS_INTERVAL": "60", "DASK_N_WORKERS": "2"}
    args = ["--input", str(src), "--spec", str(spec), "--output", str(out), *flags]
    return subprocess.Popen(
        [sys.executable, "-m", "regpipe_preprocess", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def manifest_text(out: str) -> str | None:
    try:
        return storage.read_text(storage.join(out, "manifest.json"))
    except FileNotFoundError:
        return None


def assert_whole(out: str) -> dict:
    """The manifest exists and every part it names is readable with its row count."""
    text = manifest_text(out)
    assert text is not None, f"no manifest at {out}"
    manifest = json.loads(text)
    for split in ("train", "test"):
        entries = manifest["splits"][split]
        for e in entries:
            table = pq.read_table(io.BytesIO(storage.read_bytes(storage.join(out, e["path"]))))
            assert table.num_rows == e["rows"], e
        assert sum(e["rows"] for e in entries) == manifest[f"rows_{split}"]
    return manifest


def entries_of(out: str) -> list[str]:
    fs, path = storage.filesystem(out)
    fs.invalidate_cache()
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))


def siblings(out: str) -> list[str]:
    fs, path = storage.filesystem(out)
    fs.invalidate_cache()
    return fs.glob(path.rstrip("/") + ".staging-*")


def kill_when(job: subprocess.Popen, condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if job.poll() is not None:
            return  # finished before the moment came: the assertions still hold
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.005)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "out")
    s3 = request.getfixturevalue("s3_env")
    assert s3
    import s3fs

    bucket = f"pub-{os.getpid()}-{time.monotonic_ns()}"
    s3fs.S3FileSystem().mkdir(bucket)
    return f"s3://{bucket}/prepared"


def test_kill_during_publish_keeps_a_whole_dataset(pp, tmp_path, spec_file, where):
    old_src = pp.write_csv(tmp_path / "old.csv", pp.rows(40_000))
    new_src = pp.write_csv(tmp_path / "new.csv", pp.rows(40_000, start=40_000))
    flags = ("--blocksize", "16KiB")
    assert pp.run("--input", old_src, "--spec", spec_file, "--output", where, *flags) == 0
    before = manifest_text(where)
    assert_whole(where)

    # Kill the moment the old manifest is replaced or removed: the publish step.
    job = start_job(new_src, spec_file, where, *flags)
    kill_when(job, lambda: manifest_text(where) != before)
    after = assert_whole(where)  # old or new, never half
    assert after["input"] in (str(old_src), str(new_src))

    # The next run publishes and removes whatever the killed one left.
    assert pp.run("--input", new_src, "--spec", spec_file, "--output", where, *flags) == 0
    final = assert_whole(where)
    assert entries_of(where) == published(final)
    assert not siblings(where)


def test_kill_while_writing_keeps_the_previous_dataset(pp, tmp_path, spec_file, where):
    small = pp.write_csv(tmp_path / "small.csv", pp.rows(500))
    assert pp.run("--input", small, "--spec", spec_file, "--output", where) == 0
    before = manifest_text(where)
    version = json.loads(before)["version"]
    fs, root = storage.filesystem(where)

    def writing() -> bool:
        fs.invalidate_cache()
        return len(fs.glob(f"{root}/*/train/*.parquet")) >= 3 + 1  # 1 part is the old one's

    big = pp.write_csv(tmp_path / "big.csv", pp.rows(100_000))
    job = start_job(big, spec_file, where, "--blocksize", "16KiB")
    kill_when(job, writing)
    assert job.returncode == -signal.SIGKILL
    assert manifest_text(where) == before
    assert_whole(where)
    left = [e for e in entries_of(where) if e not in ("manifest.json", version)]
    assert left, "the killed run left its unpublished version folder"

    assert pp.run("--input", small, "--spec", spec_file, "--output", where) == 0
    final = assert_whole(where)
    assert entries_of(where) == published(final)
    assert final["previous_version"] == version


def test_a_kill_before_the_first_publish_leaves_no_manifest(pp, tmp_path, spec_file):
    fresh = tmp_path / "fresh"
    big = pp.write_csv(tmp_path / "big.csv", pp.rows(100_000))
    job = start_job(big, spec_file, fresh, "--blocksize", "16KiB")
    kill_when(job, lambda: len(list(fresh.glob("*/train/*.parquet"))) >= 1)
    assert not (fresh / "manifest.json").exists()


def test_a_flat_layout_dataset_is_replaced_and_its_folders_removed(pp, tmp_path, spec_file):
    """A dataset written by an older release (parts at the top, no version folder)."""
    out = tmp_path / "out"
    src = pp.write_csv(tmp_path / "in.csv", pp.rows(2000))
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    flatten(out)
    assert_whole(str(out))  # the old layout is still a whole dataset to any reader
    assert pp.run("--input", src, "--spec", spec_file, "--output", out) == 0
    final = assert_whole(str(out))
    assert entries_of(str(out)) == sorted(["manifest.json", final["version"]])


def published(manifest: dict) -> list[str]:
    """What a dataset folder holds after a publish: the manifest, its version and the version
    it replaced (kept for readers that loaded the old manifest)."""
    versions = [manifest["version"], manifest["previous_version"]]
    return sorted(["manifest.json", *(v for v in versions if v)])


def flatten(out: Path) -> None:
    """Rewrite a dataset into the flat layout of older releases."""
    manifest = json.loads((out / "manifest.json").read_text())
    version = manifest.pop("version")
    for child in (out / version).iterdir():
        child.rename(out / child.name)
    (out / version).rmdir()
    for entries in manifest["splits"].values():
        for e in entries:
            e["path"] = e["path"].removeprefix(f"{version}/")
    manifest.pop("rejected", None)
    (out / "manifest.json").write_text(json.dumps(manifest))
