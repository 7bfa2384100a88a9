"""Fixtures for the predict tests (helpers live in predict_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from predict_helpers import NAME, Server, publish, serve


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    publish(root)
    return root


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("srv")
    with serve(models / NAME, tmp, MAX_CONTENT_LENGTH=str(16 * 2**20)) as srv:
        srv.wait_loaded((models / NAME / "LATEST").read_text().strip())
        yield srv
