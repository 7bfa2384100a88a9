"""How every console script ends: an exit code and at most one line on stderr, no traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from .errors import RegpipeError

log = logging.getLogger(__name__)


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_command(prog: str, command: Callable[[], int]) -> int:
    """``command()``'s exit code; 2 with ``prog: error: ...`` for a :class:`RegpipeError`
    (bad input, bad model file), 1 for anything unexpected (LOG_LEVEL=DEBUG logs the traceback).
    """
    try:
        return command()
    except RegpipeError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        log.debug("unexpected failure", exc_info=True)
        print(
            f"{prog}: error: unexpected {type(exc).__name__}: {one_line(exc)} "
            "(LOG_LEVEL=DEBUG shows the traceback)",
            file=sys.stderr,
        )
        return 1
