from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from regpipe_preprocess.cli import main

SPEC = {
    "name": "toy",
    "columns": [
        {"name": "id", "type": "int"},
        {"name": "group", "type": "string"},
        {"name": "a", "type": "float"},
        {"name": "b", "type": "float", "min": -100, "max": 100},
        {"name": "n", "type": "int"},
        {"name": "y", "type": "float"},
    ],
    "target": "y",
    "features": ["a", "b", "n"],
    "key": "id",
}


def toy_rows(n: int, start: int = 0, seed: int = 0) -> list[str]:
    """CSV lines (no header) of a small, valid dataset with ids start..start+n-1."""
    rng = np.random.default_rng(seed + start)
    a = rng.normal(10, 3, n).round(4)
    b = rng.uniform(-50, 50, n).round(4)
    k = rng.integers(0, 5, n)
    y = (2 * a - 0.5 * b + 3 * k + rng.normal(0, 1, n)).round(4)
    return [f"{start + i},g{i % 3},{a[i]},{b[i]},{k[i]},{y[i]}" for i in range(n)]


HEADER = "id,group,a,b,n,y"


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def write_csv(path: Path, lines: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def run_preprocess(*args: str | Path) -> int:
    return main([str(a) for a in args])


def manifest_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("PREPROCESS_PROGRESS_INTERVAL", "60")


@pytest.fixture
def pp() -> SimpleNamespace:
    """The helpers above, for test modules (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        rows=toy_rows,
        write_csv=write_csv,
        run=run_preprocess,
        manifest=manifest_of,
        header=HEADER,
        spec=SPEC,
    )
