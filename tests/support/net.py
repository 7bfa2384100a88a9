"""Loopback helpers that the tests and the benchmarks share: a free port, waiting for a server."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], what: str, seconds: float, every: float = 0.5) -> None:
    """Call ``check`` until it returns true; an OSError (not listening yet) counts as false.

    ``requests``' exceptions are OSErrors too. Raises TimeoutError naming ``what``.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(every)
    raise TimeoutError(f"timed out after {seconds}s waiting for {what}")
