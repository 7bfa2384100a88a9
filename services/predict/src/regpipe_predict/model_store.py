"""Load, verify and hot-reload the model; requests read one reference that is swapped atomically.

Each gunicorn worker owns a :class:`ModelStore`. A daemon thread polls the model URI every
``MODEL_POLL_INTERVAL`` seconds; when ``LATEST`` names another version it is loaded and verified
by :func:`regpipe_common.bundle.load_bundle` off the request path (sha256, allowlist, a probe
prediction), the probe is run again through the serving path (:meth:`LoadedModel.predict`),
and only then does ``self._current`` point to it. A request takes the reference once and uses
that model for the whole request, so each response names the version that computed it. A
version that fails verification is refused, logged once, counted, and never retried; the old
one keeps serving.
A ``LATEST`` that names a version whose files are not there yet is looked at again at the next
poll. A worker
that starts while ``LATEST`` names a refused version serves the newest older version that
verifies instead, so a restarted pod is not left without a model.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from regpipe_common.bundle import (
    Bundle,
    load_bundle,
    older_version_urls,
    probe_rows,
    resolve_version_url,
)
from regpipe_common.errors import BundleError, BundleNotFoundError, RegpipeError
from regpipe_common.log import event

from .category_model import CategoryCodec, category_codec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A verified bundle plus the arrays of its linear form, when it has one."""

    bundle: Bundle
    linear: tuple[np.ndarray | None, np.ndarray | None, np.ndarray, float] | None = field(
        default=None, repr=False
    )
    categories: CategoryCodec | None = field(default=None, repr=False)  # category features

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def version(self) -> str:
        return self.bundle.version

    @property
    def features(self) -> list[str]:
        return self.bundle.features

    @property
    def metadata(self) -> dict[str, Any]:
        return self.bundle.metadata

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for a finite float64 array of shape ``(n, n_features)``.

        For ``Pipeline(StandardScaler, linear model)`` this runs the same numpy operations as
        ``model.predict`` (so the results are equal) without scikit-learn's per-call checks.
        A model with category features takes its code matrix (:mod:`.category_model`).
        """
        if self.categories is not None:
            return self.categories.predict(self.bundle.model, X)
        if self.linear is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "X does not have feature names"
                return np.asarray(self.bundle.model.predict(X), dtype=np.float64).reshape(-1)
        return linear_predict(X, *self.linear)


_scratch = threading.local()  # per thread: gthread workers compute in two threads at once


def linear_predict(
    X: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None, coef: np.ndarray, b: float
) -> np.ndarray:
    """``(X - mean) / scale @ coef + b``: the very numpy calls ``Pipeline.predict`` makes on
    the whole matrix (so the numbers are equal: BLAS rounds a row by where it falls in the
    product), the scaled copy written into a scratch array kept for the next request instead
    of a fresh matrix-sized allocation each time (page faults: most of a large batch's time)."""
    Z = _scratch_for(X.shape)
    if mean is not None:
        np.subtract(X, mean, out=Z)
    else:
        Z[...] = X
    if scale is not None:
        Z /= scale
    return Z @ coef + b


def _scratch_for(shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous float64 array of ``shape`` from this thread's scratch (grown as needed)."""
    size = shape[0] * shape[1]
    buffer = getattr(_scratch, "buffer", None)
    if buffer is None or buffer.size < size:
        buffer = _scratch.buffer = np.empty(size)
    return buffer[:size].reshape(shape)


def linear_form(
    model: Any,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, float] | None:
    """``(mean, scale, coef, intercept)`` of ``Pipeline([StandardScaler, SGDRegressor])``."""
    steps = getattr(model, "steps", None)
    if not steps or len(steps) != 2:
        return None
    scaler, reg = steps[0][1], steps[1][1]
    if type(scaler).__name__ != "StandardScaler" or type(reg).__name__ not in {
        "SGDRegressor",
        "LinearRegression",
        "Ridge",
    }:
        return None
    coef = np.asarray(reg.coef_, dtype=np.float64)
    intercept = np.asarray(reg.intercept_, dtype=np.float64).reshape(-1)
    if coef.ndim != 1 or intercept.size != 1:
        return None
    mean = getattr(scaler, "mean_", None)
    scale = getattr(scaler, "scale_", None)
    return mean, scale, coef, float(intercept[0])


def prepare(bundle: Bundle) -> LoadedModel:
    """The served form of a verified bundle, refused unless it predicts as the bundle does."""
    loaded = LoadedModel(bundle=bundle, linear=linear_form(bundle.model))
    rows = probe_rows(bundle.metadata)
    reference = LoadedModel(bundle=bundle)
    codec = category_codec(bundle)  # category features: served on codes
    if codec is not None:
        loaded = LoadedModel(bundle=bundle, categories=codec)
        reference = LoadedModel(bundle=bundle, categories=codec.unchecked())
        rows = codec.encode_objects(rows)
    try:
        served = loaded.predict(rows.copy())
        expected = reference.predict(rows)
    except Exception as exc:
        raise BundleError(f"{bundle.url}: refused: the probe prediction failed ({exc})") from None
    if served.shape != expected.shape or not np.allclose(served, expected, rtol=1e-9, atol=1e-9):
        raise BundleError(f"{bundle.url}: refused: the serving path disagrees with the model")
    return loaded


class ModelStore:
    """The model one worker serves, and the thread that keeps it current."""

    def __init__(
        self,
        model_uri: str,
        poll_interval: float,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
        on_refuse: Callable[[str], None] | None = None,
    ) -> None:
        self.model_uri = model_uri
        self.poll_interval = poll_interval
        self._on_swap = on_swap
        self._on_refuse = on_refuse
        self._current: LoadedModel | None = None
        self._current_url: str | None = None
        self._refused: set[str] = set()
        self._lock = threading.Lock()  # one load at a time; readers never take it
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The model to use for one whole request (read once, keep the reference)."""
        return self._current

    def refresh(self) -> bool:
        """Load the version the URI names now, if it is new; True if the model changed."""
        with self._lock:
            try:
                url = resolve_version_url(self.model_uri)
            except (RegpipeError, OSError) as exc:
                if self._current is None:
                    event(log, "no model to load yet", level=logging.WARNING, reason=str(exc))
                return False
            if url == self._current_url or url in self._refused:
                return False
            loaded = self._load(url)
            if loaded is None and self._current is None and url != self.model_uri.rstrip("/"):
                loaded, url = self._fallback(url)
            if loaded is None:
                return False
            previous, self._current, self._current_url = self._current, loaded, url
            event(log, "model loaded", name=loaded.name, version=loaded.version, url=url)
            if self._on_swap is not None:
                self._on_swap(previous, loaded)
            return True

    def _load(self, url: str) -> LoadedModel | None:
        try:
            return prepare(load_bundle(url))
        except (BundleNotFoundError, OSError) as exc:  # not there yet: the next poll looks again
            event(log, "model read failed", level=logging.WARNING, url=url, reason=str(exc))
        except RegpipeError as exc:
            self._refused.add(url)
            event(log, "model refused", level=logging.ERROR, url=url, reason=str(exc))
            if self._on_refuse is not None:
                self._on_refuse(url)
        return None

    def _fallback(self, refused_url: str) -> tuple[LoadedModel | None, str]:
        """With nothing loaded and LATEST refused: the newest older version that verifies."""
        refused = refused_url.rstrip("/").rsplit("/", 1)[-1]
        for url in older_version_urls(self.model_uri, than=refused):
            if url not in self._refused and (loaded := self._load(url)) is not None:
                event(
                    log,
                    "LATEST refused; serving the newest older verified version",
                    level=logging.WARNING,
                    version=loaded.version,
                    refused=refused,
                )
                return loaded, url
        return None, refused_url

    def start(self) -> None:
        """Load now, then poll in a daemon thread (unless the poll interval is 0)."""
        self.refresh()
        if self.poll_interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="model-poller", daemon=True)
            self._thread.start()

    def _poll(self) -> None:
        pause = threading.Event()  # never set; unlike time.sleep, gevent's patching leaves it
        while not pause.wait(self.poll_interval):
            try:
                self.refresh()
            except Exception:  # the poller must outlive any surprise
                log.exception("model poll failed")
