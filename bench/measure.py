"""Run a command and measure its wall time and the peak RSS of its whole process tree."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    stdout: str


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 3600
) -> Measured:
    """Run ``cmd`` to completion, polling the RSS of its process tree every 50 ms."""
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, tree_rss(ps))
        if time.monotonic() - started > timeout:
            proc.kill()
            raise TimeoutError(f"{cmd[:3]} ran over {timeout}s")
        time.sleep(0.05)
    out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return Measured(time.monotonic() - started, peak / 2**20, out)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table with right-aligned numbers."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in cells)])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def sizes_main(run: Callable[[list[int], Path], str]) -> None:
    """``python -m bench.X [ROWS ...]``: print ``run``'s table for those dataset sizes (default
    1,000,000), the data kept in ``bench/out``."""
    sizes = [int(x) for x in sys.argv[1:]] or [1_000_000]
    work = Path("bench/out")
    work.mkdir(parents=True, exist_ok=True)
    print(run(sizes, work))
