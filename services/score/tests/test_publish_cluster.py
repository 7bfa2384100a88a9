"""Atomic publishing under SIGKILL of a real ``regpipe-score`` process, and identical output on
a real multi-process Dask cluster (``dask scheduler`` + two ``dask worker`` processes)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

BIN = Path(sys.executable).parent


def _many_parts(root: Path, features: list[str], parts: int, rows: int) -> Path:
    """A prepared dataset whose test split has ``parts`` parts of ``rows`` rows."""
    rng = np.random.default_rng(7)
    entries, digest = [], hashlib.sha256()
    (root / "test").mkdir(parents=True)
    for i in range(parts):
        columns = {f: rng.normal(size=rows) for f in features} | {"y": rng.normal(size=rows)}
        rel = f"test/part-{i:05d}.parquet"
        pq.write_table(pa.table(columns), root / rel)
        digest.update((root / rel).read_bytes())
        entries.append({"path": rel, "rows": rows})
    stats = {"count": 1, "mean": 0.0, "var": 1.0, "min": -5.0, "max": 5.0}
    manifest = {  # a whole manifest (regpipe_common.dataset checks it), train stats as generated
        "format": "regpipe-dataset/1",
        "splits": {"train": [], "test": entries},
        "features": dict.fromkeys(features, stats),
        "target": {"name": "y", **stats},
        "spec": {"key": []},
        "fingerprint": digest.hexdigest(),
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.slow
def test_a_killed_job_publishes_nothing_and_keeps_the_previous_output(pipeline, score, tmp_path):
    features = pipeline.metadata(pipeline.versions[-1])["features"]
    data = _many_parts(tmp_path / "prepared", features, parts=60, rows=10_000)
    model, out = pipeline.models / "m", tmp_path / "scored"
    # A whole previous output: a killed re-run must leave it as it was.
    assert score("--input", pipeline.prepared / "test", "--model", model, "--output", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    env = {**os.environ, "DASK_N_WORKERS": "1", "LOG_LEVEL": "WARNING"}
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    args = ["--input", str(data / "test"), "--model", str(model), "--output", str(out)]
    proc = subprocess.Popen([str(BIN / "regpipe-score"), *args], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("scored.staging-*/part-*.parquet")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no staged part appeared"
            time.sleep(0.005)
        assert proc.poll() is None, "the job finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # The same run to the end replaces it.
    assert score(*args)[0] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_scored"] == 600_000 and len(manifest["parts"]) == 60
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", *(p["path"] for p in manifest["parts"])]
    )


@pytest.mark.cluster
@pytest.mark.parametrize("raw", [False, True], ids=["prepared", "raw-csv"])
def test_a_real_cluster_gives_the_local_output(
    pipeline, score, monkeypatch, tmp_path, dask_scheduler_address, raw
):
    from distributed import Client

    args = ["--input", pipeline.prepared / "test", "--model", pipeline.models / "m"]
    if raw:  # the raw CSV the pipeline was prepared from, in units of 256 KiB
        csv = pipeline.prepared.parent / "raw" / "synthetic.csv"
        args = ["--input", csv, "--spec", csv.with_name("synthetic.spec.yaml"), *args[2:]]
        monkeypatch.setattr("regpipe_score.inputs.RAW_BLOCK_BYTES", 256 * 1024)
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert score(*args, "--output", local)[0] == 0
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_scheduler_address)

    def executed(dask_worker) -> int:  # a local function: pickled by value for the workers
        return dask_worker.state.executed_count

    with Client(dask_scheduler_address) as client:
        workers = client.scheduler_info()["workers"]
        before = client.run(executed)
        code, _, err = score(*args, "--output", remote)
        after = client.run(executed)
    assert code == 0, err
    assert len(workers) == 2 and all(after[w] > before[w] for w in workers), (before, after)
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (local, remote)]
    for m in manifests:
        m.pop("created_at")
    assert manifests[0] == manifests[1]
    for part in manifests[0]["parts"]:  # pandas' equals: NaN (a missing raw target) == NaN
        tables = [pq.read_table(d / part["path"]) for d in (local, remote)]
        assert tables[0].schema == tables[1].schema
        assert tables[0].to_pandas().equals(tables[1].to_pandas())
    rejected = manifests[0]["rejected"]
    assert (rejected is not None) == raw  # raw rows with a missing feature are listed
    if raw:
        assert (local / rejected).read_bytes() == (remote / rejected).read_bytes()


@pytest.mark.slow
def test_peak_memory_stays_flat_as_the_input_grows(pipeline, tmp_path):
    """A real regpipe-score process: ten times the rows, the same peak RSS (one row group per
    task in memory), well under 1 GB."""
    features = pipeline.metadata(pipeline.versions[-1])["features"]
    peaks = []
    for parts in (6, 60):
        data = _many_parts(tmp_path / f"prepared-{parts}", features, parts=parts, rows=20_000)
        peaks.append(_peak_rss(pipeline, ["--input", str(data / "test")], parts * 20_000))
    small, large = peaks
    assert large < 1024, peaks
    assert large < small + 100, f"peak RSS grew with the input: {peaks} MB"


@pytest.mark.slow
def test_peak_memory_stays_flat_as_raw_csv_grows(pipeline, tmp_path):
    """Raw CSV with its spec: 16 MiB units, two in memory at a time, five times the rows.
    Both sizes are past the pipeline's depth: below about 8 units the peak still climbs to its
    plateau (200k rows, 3 units: 383-411 MB; 600k: 451-466; 1M: 469-508; 2M: 480-486)."""
    from bench.datagen import generate_csv

    peaks = []
    for rows in (600_000, 3_000_000):  # 9 and 42 full 16 MiB units
        csv = tmp_path / f"raw-{rows}" / "synthetic.csv"
        generate_csv(csv, rows)
        flags = ["--input", str(csv), "--spec", str(csv.with_name("synthetic.spec.yaml"))]
        peaks.append(_peak_rss(pipeline, flags, None, rows_read=rows))
    small, large = peaks
    assert large < 1024, peaks
    assert large < small + 100, f"peak RSS grew with the input: {peaks} MB"


def _peak_rss(pipeline, flags: list[str], scored: int | None, rows_read: int = 0) -> float:
    """Run regpipe-score with ``flags``; check the rows it scored (or read); its peak RSS."""
    from bench.measure import run_measured

    out = Path(flags[1]).parent / "scored"
    cmd = [str(BIN / "regpipe-score"), *flags, "--model", str(pipeline.models / "m")]
    measured = run_measured(
        [*cmd, "--output", str(out)],
        env={"DASK_N_WORKERS": "2", "DASK_SCHEDULER_ADDRESS": "", "LOG_LEVEL": "WARNING"},
    )
    manifest = json.loads((out / "manifest.json").read_text())
    if scored is not None:
        assert manifest["rows_scored"] == scored
    else:
        assert manifest["rows_read"] == rows_read
    return measured.peak_rss_mb
