"""``--version`` of every console script: the distribution and the key libraries it runs on.

The images and ``make setup`` install from ``uv.lock``, so the versions printed here are the
lock's: a train image and a predict image built from the same commit print the same
scikit-learn, numpy and joblib.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# The libraries whose versions decide whether a model bundle loads (and a few that shape results).
KEY_LIBRARIES = (
    "numpy",
    "scikit-learn",
    "joblib",
    "scipy",
    "pandas",
    "pyarrow",
    "dask",
    "distributed",
    "flask",
    "gunicorn",
    "prometheus-client",
)


def installed_versions(names: tuple[str, ...] = KEY_LIBRARIES) -> dict[str, str]:
    """``{name: version}`` of those of ``names`` that are installed."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def version_text(distribution: str) -> str:
    """``regpipe-x 0.1.0 (Python 3.11.2)`` then one ``name==version`` line per key library."""
    try:
        own = version(distribution)
    except PackageNotFoundError:
        own = "unknown"
    lines = [f"{distribution} {own} (Python {platform.python_version()})"]
    lines += [f"  {name}=={v}" for name, v in installed_versions().items()]
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` as is (argparse's own action rewraps it)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        self.distribution = kwargs.pop("distribution")
        super().__init__(
            option_strings,
            argparse.SUPPRESS,  # no `version` attribute in the parsed namespace
            default=argparse.SUPPRESS,
            nargs=0,
            help="print the versions and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        try:
            print(version_text(self.distribution), flush=True)
        except BrokenPipeError:  # `--version | head -1`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        parser.exit()


def add_version_flag(parser: argparse.ArgumentParser, distribution: str) -> None:
    """Give ``parser`` a ``--version`` flag that prints :func:`version_text`."""
    parser.add_argument("--version", action=_VersionAction, distribution=distribution)
