"""One lock of the whole dependency set (``uv.lock``), and ``--version`` shows its versions."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = ("numpy", "scikit-learn", "joblib")


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"]: p["version"] for p in lock["package"] if "version" in p}


def uv() -> str:
    found = shutil.which("uv", path=str(BIN)) or shutil.which("uv")
    if not found:
        pytest.fail("uv is not installed: make setup (it is in the dev group of the lock)")
    return found


def test_lock_is_current_with_every_pyproject() -> None:
    """`uv lock --check` fails when a pyproject asks for something the lock does not hold."""
    result = subprocess.run(
        [uv(), "lock", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lock_has_one_version_of_each_key_library() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for name in KEY:
        assert [p["name"] for p in lock["package"]].count(name) == 1, name


@pytest.mark.parametrize("script", ["regpipe-preprocess", "regpipe-train", "regpipe-predict"])
def test_version_flag_shows_the_locked_key_libraries(script: str) -> None:
    result = subprocess.run(
        [str(BIN / script), "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith(f"{script} 0.1.0 (Python 3.11.")
    locked = locked_versions()
    for name in KEY:
        assert f"  {name}=={locked[name]}" in rest, (name, result.stdout)
    assert "Traceback" not in result.stderr


def test_version_flag_leaves_the_parsed_settings_alone() -> None:
    from regpipe_preprocess.cli import build_parser

    args = vars(build_parser().parse_args(["--input", "x", "--spec", "y", "--output", "z"]))
    assert "version" not in args
