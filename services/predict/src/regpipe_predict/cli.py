"""``regpipe-predict``: serve ``MODEL_URI`` with gunicorn (settings in :mod:`.settings`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from regpipe_common.cli import run_command

from .settings import SCHEMA

PROG = "regpipe-predict"


def build_parser() -> argparse.ArgumentParser:
    """One flag per setting of :data:`.settings.SCHEMA`, ``--help`` and ``--version``."""
    return SCHEMA.parser(
        PROG,
        "Serve the model bundle at MODEL_URI with gunicorn: /predict, the Open "
        "Inference Protocol V2, OpenAPI docs, Prometheus metrics, hot reload.",
        "Every flag falls back to the environment variable shown. Also: "
        "PROMETHEUS_MULTIPROC_DIR (workers' metric files; default a new temporary folder, "
        "emptied at start), LOG_LEVEL, LOG_FORMAT (text|json).",
    )


def export_flags(args: argparse.Namespace) -> None:
    """Check every setting, then put the flags given into the environment gunicorn's master
    and workers read (a flag wins over its variable)."""
    SCHEMA.resolve(args)
    for name, value in vars(args).items():
        if name in SCHEMA.settings and value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            os.environ[SCHEMA[name].env] = text


def main(argv: list[str] | None = None) -> int:
    """Run gunicorn in this process with :mod:`.gunicorn_conf`; returns when it stops."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    code = run_command(PROG, lambda: _configure(args))
    if code:
        return code

    from gunicorn.app.base import BaseApplication

    from . import gunicorn_conf

    class PredictApplication(BaseApplication):
        def load_config(self) -> None:
            for key, value in vars(gunicorn_conf).items():
                if key in self.cfg.settings and value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            from .app import create_app

            return create_app()

    PredictApplication().run()
    return 0


def _configure(args: argparse.Namespace) -> int:
    export_flags(args)
    # Reads the settings and sets PROMETHEUS_MULTIPROC_DIR before prometheus_client loads.
    from . import gunicorn_conf  # noqa: F401

    return 0


if __name__ == "__main__":
    sys.exit(main())
