"""``regpipe-score``: command-line flags, each with an environment variable fallback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from regpipe_common.cli import run_command
from regpipe_common.log import configure_logging

from .settings import SCHEMA, ScoreSettings, load

PROG = "regpipe-score"


def build_parser() -> argparse.ArgumentParser:
    """The parser: one flag per setting of :data:`.settings.SCHEMA`."""
    return SCHEMA.parser(
        PROG,
        "Score a prepared dataset split (or raw files with --spec) with a verified "
        "model bundle on Dask and publish the predictions atomically. Every flag falls back to "
        "the environment variable "
        "shown. Also: DASK_SCHEDULER_ADDRESS, LOG_LEVEL, LOG_FORMAT.",
    )


def parse_settings(argv: Sequence[str] | None) -> ScoreSettings:
    """The typed settings: flag > environment variable > default (RegpipeError if bad)."""
    return load(SCHEMA.resolve(build_parser().parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; 0 on success, 2 on a user-facing error, 1 on a bug."""
    configure_logging()
    return run_command(PROG, lambda: _score(argv))


def _score(argv: Sequence[str] | None) -> int:
    settings = parse_settings(argv)
    from .job import report, run  # Dask and scikit-learn load only when needed.

    configure_logging()  # again: importing distributed resets its loggers to INFO
    manifest = run(settings)
    report(manifest, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
