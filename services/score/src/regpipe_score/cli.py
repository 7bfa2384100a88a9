"""``regpipe-score``: command-line flags, each with an environment variable fallback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from regpipe_common.cli import run_command
from regpipe_common.log import configure_logging
from regpipe_common.version import add_version_flag

from .settings import ENV_VARS, ON_MISSING, ScoreSettings, env_defaults

PROG = "regpipe-score"
HELP = {
    "input": "a prepared dataset's split to score (<prepared>/test or <prepared>/train), or "
    "with --spec raw CSV (plain or .gz) or Parquet input: a file, a glob or a folder",
    "model": "model folder <models>/<name> (follows LATEST) or <models>/<name>@<version>",
    "output": "folder or URL for part-*.parquet and manifest.json (written last)",
    "key": "key column(s) copied to the output (default: the spec's row key when the parts "
    "hold it); SCORE_KEY is comma-separated",
    "spec": "dataset spec (YAML) of raw input, validated and cleaned as regpipe-preprocess "
    "does (malformed rows go to rejected/rejected.jsonl)",
    "on_missing": "a row with a missing or non-finite feature: skip it (counted in "
    "rows_rejected) or fail the job naming file, row and column",
}
REQUIRED = ("input", "model", "output")


def build_parser() -> argparse.ArgumentParser:
    """The parser, its defaults read from the environment."""
    defaults = env_defaults()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Score a prepared dataset split (or raw files with --spec) with a verified "
        "model bundle on Dask and publish the predictions atomically. Every flag falls back to "
        "the environment variable "
        "shown. Also: DASK_SCHEDULER_ADDRESS, LOG_LEVEL, LOG_FORMAT.",
    )
    add_version_flag(parser, PROG)
    for dest, env in ENV_VARS.items():
        flag = "--" + dest.replace("_", "-")
        shown = "required" if dest in REQUIRED else f"default: {defaults[dest] or 'unset'}"
        help_text = f"{HELP[dest]} [env {env}; {shown}]"
        if dest == "key":
            # None, not the environment's list: "extend" would append the flags to it.
            parser.add_argument(flag, nargs="+", action="extend", metavar="COL", help=help_text)
        elif dest == "on_missing":
            parser.add_argument(flag, choices=ON_MISSING, default=defaults[dest], help=help_text)
        else:
            parser.add_argument(flag, dest=dest, default=defaults[dest], help=help_text)
    parser.set_defaults(env_key=defaults["key"])
    return parser


def parse_settings(argv: Sequence[str] | None) -> ScoreSettings:
    args = vars(build_parser().parse_args(argv))
    env_key = args.pop("env_key")
    args["key"] = tuple(args["key"] if args["key"] is not None else env_key)
    return ScoreSettings(**args)


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
