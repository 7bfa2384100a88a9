"""Peak memory stays flat as the input grows: it depends on the block size, not the file size."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

import psutil
import pytest


def peak_rss_mb(cmd: list[str]) -> float:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, sum(p.memory_info().rss for p in [ps, *ps.children(True)]))
        time.sleep(0.02)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return peak / 2**20


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_input(pp, tmp_path, spec_file):
    small = pp.write_csv(tmp_path / "small.csv", pp.rows(40_000))
    big = pp.write_csv(tmp_path / "big.csv", pp.rows(800_000))  # 20x the rows
    assert big.stat().st_size > 20 * 2**20
    peaks = {}
    for name, src in (("small", small), ("big", big)):
        peaks[name] = peak_rss_mb(
            [
                sys.executable,
                "-m",
                "regpipe_preprocess",
                "--input",
                str(src),
                "--spec",
                str(spec_file),
                "--output",
                str(tmp_path / f"out-{name}"),
                "--blocksize",
                "1MiB",
            ]
        )
    assert peaks["big"] < peaks["small"] * 1.25 + 40, peaks
