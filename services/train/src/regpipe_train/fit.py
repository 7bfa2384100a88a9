"""The SGD loop: epochs over the train partitions, streamed through Dask with prefetch.

A Dask task loads one partition, holds out its validation rows, shuffles and standardizes the
rest, centers the target on the manifest's mean (so SGD never has to walk its intercept to a
large offset) and, in the first epoch, reduces it to its normal-equations matrix. The driver
fits the rows with ``partial_fit`` in mini-batches while the next partitions load. Every random
choice comes from ``(seed, epoch, partition)``, so the model does not depend on the number of
workers, and an epoch resumed from a checkpoint is the epoch an uninterrupted run would have
done.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client, Future
from sklearn.linear_model import SGDRegressor

from regpipe_common.errors import RegpipeError
from regpipe_common.log import event

from .dataset import (
    Dataset,
    EmptySplitError,
    Part,
    partition_order,
    read_partition,
    row_order,
    standardize,
    validation_mask,
)
from .exact import partial_gram
from .settings import TrainSettings

log = logging.getLogger(__name__)
# Partitions loading ahead of the one being fitted (one per worker on a 2-core machine).
PREFETCH = 2


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
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def model(self) -> SGDRegressor:
        """The best model on validation, else the last (predicting the centered target)."""
        return self.best if self.best is not None else self.sgd


@dataclass(frozen=True)
class Validation:
    x: np.ndarray
    y: np.ndarray

    def r2(self, sgd: SGDRegressor) -> float:
        if len(self.y) == 0:
            return float("nan")
        residual = self.y - (self.x @ sgd.coef_ + sgd.intercept_[0])
        total = float(((self.y - self.y.mean()) ** 2).sum())
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
    want_gram: bool,
) -> dict[str, Any]:
    """(Dask task) One train partition's fit rows, shuffled, standardized, target centered."""
    x, y = read_partition(part, dataset.features, dataset.target)
    held_out = validation_mask(seed, part.index, part.rows, validation_fraction)
    fit_rows = np.flatnonzero(~held_out)
    order = fit_rows[row_order(seed, epoch, part.index, len(fit_rows))]
    y = y - dataset.target_mean
    out: dict[str, Any] = {"index": part.index, "y": y[order]}
    out["x"] = standardize(x[order], dataset.mean, dataset.scale)
    if want_gram:
        out["gram"] = partial_gram(out["x"], out["y"])
    if want_validation:
        rows = np.flatnonzero(held_out)
        out["x_val"] = standardize(x[rows], dataset.mean, dataset.scale)
        out["y_val"] = y[rows]
    return out


def fit(
    client: Client,
    dataset: Dataset,
    settings: TrainSettings,
    state: FitState,
    on_epoch: Callable[[FitState], None] | None = None,
) -> FitState:
    """Run epochs until ``settings.epochs`` or early stopping; ``on_epoch`` checkpoints."""
    validation: Validation | None = None
    while state.epochs_done < settings.epochs and not state.stopped_early:
        epoch = state.epochs_done
        started = time.perf_counter()
        want_gram = state.gram is None
        results = _run_epoch(client, dataset, settings, state, epoch, validation is None, want_gram)
        seconds = time.perf_counter() - started
        if results["rows"] == 0:
            raise EmptySplitError("no train rows left to fit after holding out the validation rows")
        if want_gram:
            state.gram = _sum_in_order(results["grams"])
        if validation is None:
            validation = _collect_validation(results["validation"], dataset.features)
        _end_epoch(state, settings, validation, epoch, results["rows"], seconds)
        if on_epoch is not None:
            on_epoch(state)
    return state


def _run_epoch(
    client: Client,
    dataset: Dataset,
    settings: TrainSettings,
    state: FitState,
    epoch: int,
    want_validation: bool,
    want_gram: bool,
) -> dict[str, Any]:
    parts = [dataset.train[i] for i in partition_order(settings.seed, epoch, len(dataset.train))]

    def submit(part: Part) -> Future:
        return client.submit(
            load_train_part,
            part,
            dataset,
            settings.seed,
            epoch,
            settings.validation_fraction,
            want_validation,
            want_gram,
            pure=False,
        )

    grams: dict[int, np.ndarray] = {}
    validation: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    rows = 0
    pending = deque(submit(part) for part in parts[:PREFETCH])
    for k, part in enumerate(parts):
        loaded = pending.popleft().result()
        if k + PREFETCH < len(parts):
            pending.append(submit(parts[k + PREFETCH]))
        _fit_rows(state.sgd, loaded["x"], loaded["y"], settings, dataset, epoch, part)
        rows += len(loaded["y"])
        if want_gram:
            grams[loaded["index"]] = loaded["gram"]
        if want_validation:
            validation[loaded["index"]] = (loaded["x_val"], loaded["y_val"])
        del loaded
    return {"rows": rows, "grams": grams, "validation": validation}


def _fit_rows(
    sgd: SGDRegressor,
    x: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    dataset: Dataset,
    epoch: int,
    part: Part,
) -> None:
    batch = settings.batch_size
    where = f"epoch {epoch + 1}, partition {part.url}"
    for start in range(0, len(y), batch):
        try:
            sgd.partial_fit(x[start : start + batch], y[start : start + batch])
        except ValueError as exc:  # scikit-learn's "Floating-point under-/overflow occurred"
            raise DivergenceError(f"SGD diverged at {where}: {exc}") from None
    if len(y):
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
    has_validation = len(validation.y) > 0
    score = validation.r2(state.sgd)
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


def _sum_in_order(grams: dict[int, np.ndarray]) -> np.ndarray:
    total = None
    for index in sorted(grams):
        total = grams[index].copy() if total is None else total + grams[index]
    assert total is not None
    return total


def _collect_validation(
    parts: dict[int, tuple[np.ndarray, np.ndarray]], features: list[str]
) -> Validation:
    if not parts:
        return Validation(np.empty((0, len(features))), np.empty(0))
    order = sorted(parts)
    return Validation(
        np.concatenate([parts[i][0] for i in order]), np.concatenate([parts[i][1] for i in order])
    )
