"""``regpipe-predict``: serve ``MODEL_URI`` with gunicorn (settings in :mod:`.settings`)."""

from __future__ import annotations

import sys
from typing import Any

from regpipe_common.errors import RegpipeError
from regpipe_common.version import version_text


def main() -> int:
    """Run gunicorn in this process with :mod:`.gunicorn_conf`; returns when it stops."""
    if "--version" in sys.argv[1:]:
        print(version_text("regpipe-predict"))
        return 0
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
