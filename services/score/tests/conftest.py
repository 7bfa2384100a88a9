"""Fixtures: a real prepared dataset (regpipe-preprocess on the benchmark's synthetic CSV) and
two real model versions of it (regpipe-train), built once per session."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bench.datagen import generate_csv

ROWS = 40_000


@dataclass(frozen=True)
class Pipeline:
    prepared: Path
    models: Path
    name: str
    versions: list[str]  # oldest first; the last one is LATEST

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.prepared / "manifest.json").read_text())

    def metadata(self, version: str) -> dict[str, Any]:
        return json.loads((self.models / self.name / version / "metadata.json").read_text())


def _clean_env(mp: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith(("SCORE_", "TRAIN_", "PREPROCESS_")) or var == "DASK_SCHEDULER_ADDRESS":
            mp.delenv(var)
    mp.setenv("DASK_N_WORKERS", "2")
    mp.setenv("PREPROCESS_PROGRESS_INTERVAL", "60")


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    from regpipe_preprocess.cli import main as preprocess
    from regpipe_train.cli import main as train

    root = tmp_path_factory.mktemp("pipeline")
    csv = root / "raw" / "synthetic.csv"
    generate_csv(csv, ROWS)
    prepared, models = root / "prepared", root / "models"
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        spec = str(csv.with_name("synthetic.spec.yaml"))
        args = ["--input", str(csv), "--spec", spec, "--output", str(prepared)]
        assert preprocess([*args, "--blocksize", "512KiB"]) == 0
        versions = []
        for epochs in ("1", "3"):
            common = ["--data", str(prepared), "--models", str(models), "--name", "m"]
            assert train([*common, "--epochs", epochs]) == 0
            versions.append((models / "m" / "LATEST").read_text().strip())
    yield Pipeline(prepared=prepared, models=models, name="m", versions=versions)


@pytest.fixture
def score(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., Any]:
    """``score(*flags)``: run ``regpipe-score``'s ``main`` here; returns (code, stdout, stderr)."""
    from regpipe_score.cli import main

    _clean_env(monkeypatch)

    def run(*flags: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(f) for f in flags])
        except SystemExit as exc:  # argparse's own errors (bad choice, --help)
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def read_output(out: Path) -> tuple[dict[str, Any], Any]:
    """The scored dataset's manifest and all its parts as one pandas DataFrame, in order."""
    import pandas as pd

    manifest = json.loads((out / "manifest.json").read_text())
    frames = [pq.read_table(out / p["path"]).to_pandas() for p in manifest["parts"]]
    return manifest, pd.concat(frames, ignore_index=True)


def read_split(prepared: Path, split: str = "test") -> Any:
    import pandas as pd

    manifest = json.loads((prepared / "manifest.json").read_text())
    parts = [pq.read_table(prepared / e["path"]).to_pandas() for e in manifest["splits"][split]]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def helpers() -> Any:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(read_output=read_output, read_split=read_split, copytree=shutil.copytree)
