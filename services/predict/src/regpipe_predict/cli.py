"""``regpipe-predict``: serve ``MODEL_URI`` with gunicorn (settings in :mod:`.settings`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from regpipe_common.errors import RegpipeError
from regpipe_common.version import add_version_flag

from . import settings


def build_parser() -> argparse.ArgumentParser:
    """``--help`` (the settings table of :mod:`.settings`) and ``--version``; no other flags."""
    parser = argparse.ArgumentParser(
        prog="regpipe-predict",
        description=__doc__,
        epilog=settings.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_flag(parser, "regpipe-predict")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run gunicorn in this process with :mod:`.gunicorn_conf`; returns when it stops."""
    build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        # Reads the settings and sets PROMETHEUS_MULTIPROC_DIR before prometheus_client loads.
        from . import gunicorn_conf
    except RegpipeError as exc:
        print(f"regpipe-predict: {exc}", file=sys.stderr)
        return 2

    from gunicorn.app.base import BaseApplication

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


if __name__ == "__main__":
    sys.exit(main())
