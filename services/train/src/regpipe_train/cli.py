"""``regpipe-train``: command-line flags, each with an environment variable fallback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from regpipe_common.cli import run_command
from regpipe_common.log import configure_logging

from .settings import SCHEMA, load

PROG = "regpipe-train"
# Exit codes: 0 published and promoted, 1 a bug, 2 bad input (nothing published),
# 3 published but not promoted by the gate (LATEST unchanged; a CI job stops the rollout).
NOT_PROMOTED = 3
EPILOG = (
    "Exit codes: 0 published and promoted; 2 bad input, nothing published; 3 published but "
    "NOT promoted by the gate (LATEST unchanged, the reason is printed); 1 unexpected failure."
)


def build_parser() -> argparse.ArgumentParser:
    """The parser: one flag per setting of :data:`.settings.SCHEMA`."""
    return SCHEMA.parser(
        PROG,
        "Train Pipeline(StandardScaler, SGDRegressor) (category features: a "
        "ColumnTransformer with one-hot levels in front) on a prepared dataset with "
        "Dask and publish a verified model bundle. Every flag falls back to the environment "
        "variable shown. Also: DASK_SCHEDULER_ADDRESS, LOG_LEVEL, LOG_FORMAT.",
        EPILOG,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; 0 promoted, 3 published but not promoted, 2 on bad input, 1 on a bug."""
    configure_logging()
    return run_command(PROG, lambda: _train(argv))


def _train(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    settings = load(SCHEMA.resolve(args))
    from .job import report, run  # Dask and scikit-learn load only when needed.

    configure_logging()  # again: importing distributed resets its loggers to INFO
    result = run(settings)
    report(result, sys.stdout)
    if not result.promoted:
        reason = result.metadata["promotion"]["reason"]
        print(f"{PROG}: not promoted (LATEST unchanged): {reason}", file=sys.stderr)
        return NOT_PROMOTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
