"""Column sums over the most recent rows, for the drift gauges (numeric and category)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RollingSums:
    """Per-column sums over the last ``window`` rows (whole batches), shared by a worker's
    threads; :meth:`add` hands back the window's means at most once per ``interval`` seconds,
    so the gauges are set off the request's hot path."""

    def __init__(self, columns: int, window: int, interval: float) -> None:
        self.window = window
        self.interval = interval
        self.next_set = 0.0
        self.chunks: deque[tuple[int, np.ndarray]] = deque()
        self.rows = 0
        self.sums = np.zeros(columns)
        self.lock = threading.Lock()

    def add(self, rows: int, sums: np.ndarray) -> np.ndarray | None:
        """Add one batch's row count and column sums; the means when the gauges are due."""
        with self.lock:
            self.chunks.append((rows, sums))
            self.rows += rows
            self.sums = self.sums + sums
            while len(self.chunks) > 1 and self.rows - self.chunks[0][0] >= self.window:
                n, s = self.chunks.popleft()
                self.rows -= n
                self.sums = self.sums - s
            now = time.monotonic()
            if now < self.next_set:
                return None
            self.next_set = now + self.interval
            return self.sums / self.rows
