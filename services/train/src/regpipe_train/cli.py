"""``regpipe-train``: command-line flags, each with an environment variable fallback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from regpipe_common.cli import run_command
from regpipe_common.log import configure_logging
from regpipe_common.version import add_version_flag

from .settings import ENV_VARS, TrainSettings, env_defaults

PROG = "regpipe-train"
HELP = {
    "data": "prepared dataset folder or URL (preprocess output with manifest.json)",
    "models": "model store folder or URL; the bundle goes to <models>/<name>/<version>/",
    "name": "model name",
    "epochs": "maximum number of epochs",
    "batch_size": "rows per partial_fit call",
    "seed": "seed for validation rows, partition and row order",
    "resume": "continue from the last checkpoint of the same run, if any",
    "patience": "stop after this many epochs without validation improvement",
    "tolerance": "smallest validation R² gain that counts as an improvement",
    "validation_fraction": "fraction of train rows held out for early stopping",
    "alpha": "L2 penalty of the SGDRegressor",
    "eta0": "initial learning rate (schedule: eta0 / t^power_t, averaged SGD)",
    "power_t": "exponent of the inverse-scaling learning rate",
    "max_weight": "weights beyond max_weight x target std count as divergence",
    "checkpoint_dir": "checkpoint folder or URL (default <models>/<name>/.checkpoints)",
    "max_regression": "promote only if the test R² is at most this much below the current "
    "LATEST model's on the same test split",
    "force": "move LATEST to the new version whatever the promotion gate says",
}
TYPES = {
    "epochs": int,
    "batch_size": int,
    "seed": int,
    "patience": int,
    "tolerance": float,
    "validation_fraction": float,
    "alpha": float,
    "eta0": float,
    "power_t": float,
    "max_weight": float,
    "max_regression": float,
}
# Exit codes: 0 published and promoted, 1 a bug, 2 bad input (nothing published),
# 3 published but not promoted by the gate (LATEST unchanged; a CI job stops the rollout).
NOT_PROMOTED = 3
EPILOG = (
    "Exit codes: 0 published and promoted; 2 bad input, nothing published; 3 published but "
    "NOT promoted by the gate (LATEST unchanged, the reason is printed); 1 unexpected failure."
)


def build_parser() -> argparse.ArgumentParser:
    """The parser, its defaults read from the environment."""
    defaults = env_defaults()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train Pipeline(StandardScaler, SGDRegressor) on a prepared dataset with "
        "Dask and publish a verified model bundle. Every flag falls back to the environment "
        "variable shown. Also: DASK_SCHEDULER_ADDRESS, LOG_LEVEL, LOG_FORMAT.",
        epilog=EPILOG,
    )
    for dest, env in ENV_VARS.items():
        flag = "--" + dest.replace("_", "-")
        shown = "required" if dest in ("data", "models") else f"default: {defaults[dest]}"
        if dest == "checkpoint_dir":
            shown = "default: unset"
        help_text = f"{HELP[dest]} [env {env}; {shown}]"
        if dest in ("resume", "force"):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=defaults[dest], help=help_text
            )
        else:
            parser.add_argument(
                flag, dest=dest, type=TYPES.get(dest, str), default=defaults[dest], help=help_text
            )
    add_version_flag(parser, "regpipe-train")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; 0 promoted, 3 published but not promoted, 2 on bad input, 1 on a bug."""
    configure_logging()
    return run_command(PROG, lambda: _train(argv))


def _train(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    settings = TrainSettings(**vars(args))
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
