"""``regpipe-preprocess``: validate, clean and split a dataset into Parquet + a manifest."""

from __future__ import annotations

import argparse
import logging
import sys

from regpipe_common.errors import RegpipeError
from regpipe_common.log import configure_logging

from .job import run
from .settings import SCHEMA, Settings


def build_parser() -> argparse.ArgumentParser:
    return SCHEMA.parser(
        "regpipe-preprocess",
        "Validate, clean and split a dataset into Parquet + a manifest.",
        "Every flag can also be set by its environment variable. Dask: "
        "DASK_SCHEDULER_ADDRESS (use that scheduler instead of a local cluster), "
        "DASK_N_WORKERS, DASK_THREADS_PER_WORKER, DASK_LOCAL_PROCESSES. "
        "Logging: LOG_LEVEL, LOG_FORMAT (text|json).",
    )


def parse_settings(argv: list[str] | None) -> Settings:
    """The typed settings: flag > environment variable > default (RegpipeError if bad)."""
    return Settings(**SCHEMA.resolve(build_parser().parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        settings = parse_settings(argv)
        manifest = run(settings)
    except RegpipeError as exc:
        print(f"regpipe-preprocess: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("regpipe-preprocess: interrupted; nothing was published", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: one line, the traceback only in DEBUG
        logging.getLogger(__name__).debug("unexpected failure", exc_info=True)
        print(f"regpipe-preprocess: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"published {settings.output}: rows_read={manifest['rows_read']} "
        f"rejected={manifest['rows_rejected']} dropped_missing={manifest['rows_dropped_missing']} "
        f"train={manifest['rows_train']} test={manifest['rows_test']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
