"""Unpickle joblib files (model bundles, training checkpoints) through an explicit allowlist.

A sha256 in the metadata only proves that ``model.joblib`` matches ``metadata.json``; anybody
who can write one can write the other. So a pickle is code until proven otherwise, and this
module is the only place that turns stored bytes into objects:

- **Globals** resolve only through :data:`ALLOWED`, a table keyed by the exact
  ``(module, qualname)`` pickle writes for each allowed object. Nothing is imported or looked up
  by name: a name that is not in the table is refused before anything is resolved, so a
  callable that some scikit-learn module merely re-exports (``functools.partial``,
  ``operator.attrgetter``, ``numpy.memmap``, ...) is refused like ``os.system``. The table holds
  the scikit-learn estimator classes regpipe's models are made of (each checked to be defined
  by scikit-learn itself) and the numpy/joblib helpers that rebuild arrays.
- **BUILD** (``__setstate__`` or attribute updates) applies only to instances of those classes:
  never to a class or module object, so a pickle cannot patch a class for the whole process.
- **Arrays** in joblib's layout are read here, not by joblib: raw bytes with their size checked
  against what is left of the payload, and object arrays through this same unpickler.

skops.io was considered (a format made for this); it would change the bundle's file format
(``model.joblib`` is a contract) and adds a dependency whose trusted-type list is the same idea
as :data:`ALLOWED_CLASSES`. The joblib layout this module reads is pinned by a round-trip test.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from joblib.numpy_pickle import NumpyArrayWrapper
from numpy._core.multiarray import _reconstruct, scalar
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# The estimators and transformers regpipe's models are made of.
ALLOWED_CLASSES: tuple[type, ...] = (
    Pipeline,
    StandardScaler,
    SGDRegressor,
    ColumnTransformer,
    OneHotEncoder,
)
# What numpy and joblib need to rebuild arrays and scalars, under every name they pickle as.
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): NumpyArrayWrapper,
    ("builtins", "slice"): slice,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
_NUMPY_SCALAR_TYPES = (np.float64, np.float32, np.int64, np.int32, np.bool_)


def _allowed_table() -> dict[tuple[str, str], Any]:
    table = dict(_NUMPY_GLOBALS)
    for cls in ALLOWED_CLASSES:
        if not cls.__module__.startswith("sklearn."):
            raise RuntimeError(f"{cls!r} is not defined by scikit-learn")
        table[(cls.__module__, cls.__qualname__)] = cls
    for cls in _NUMPY_SCALAR_TYPES:
        table[("numpy", cls.__name__)] = cls
    return table


ALLOWED: dict[tuple[str, str], Any] = _allowed_table()
# Objects BUILD may set state on (exact classes; dtypes are instances of dtype subclasses).
_BUILDABLE = (*ALLOWED_CLASSES, np.ndarray, np.dtype, NumpyArrayWrapper)


class UnsafePickleError(Exception):
    """The pickle names a global outside the allowlist, or misuses an allowed one."""


class _AllowlistUnpickler(pickle._Unpickler):  # the Python implementation: its opcodes are ours
    dispatch = pickle._Unpickler.dispatch.copy()

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._payload = file

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                f"global {module}.{name} is not allowed in a model file"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("persistent ids are not allowed in a model file")

    def get_extension(self, code: int) -> None:
        raise UnsafePickleError("extension codes are not allowed in a model file")

    def load_build(self) -> None:
        target = self.stack[-2]  # BUILD pops the state, then sets it on the object below
        if isinstance(target, type) or not isinstance(target, _BUILDABLE):
            raise UnsafePickleError(
                f"setting the state of {type(target).__name__!r} is not allowed in a model file"
            )
        super().load_build()
        if isinstance(self.stack[-1], NumpyArrayWrapper):
            self.stack.append(self._read_array(self.stack.pop()))

    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, wrapper: NumpyArrayWrapper) -> np.ndarray:
        """The array that follows a ``NumpyArrayWrapper`` in joblib's layout."""
        state = wrapper.__dict__
        dtype, shape, order = state.get("dtype"), state.get("shape"), state.get("order", "C")
        if not (isinstance(dtype, np.dtype) and isinstance(shape, tuple) and order in ("C", "F")):
            raise UnsafePickleError("malformed array header in a model file")
        if dtype.hasobject:
            # joblib writes object arrays as a nested pickle: read it with the same rules.
            array = _AllowlistUnpickler(self._payload).load()
            if not isinstance(array, np.ndarray):
                raise UnsafePickleError("an object array's payload is not an array")
            return array
        if state.get("numpy_array_alignment_bytes") is not None:
            padding = self._payload.read(1)
            self._payload.read(int.from_bytes(padding, "little"))
        count = int(np.prod([int(n) for n in shape], dtype=np.int64))
        size = count * dtype.itemsize
        left = len(self._payload.getbuffer()) - self._payload.tell()
        if count < 0 or size > left:
            raise UnsafePickleError(f"an array of {size} bytes does not fit in the model file")
        array = np.frombuffer(self._payload.read(size), dtype=dtype, count=count).copy()
        array = array.reshape(shape[::-1]).T if order == "F" else array.reshape(shape)
        return array if dtype.isnative else array.byteswap().view(dtype.newbyteorder())


def safe_joblib_loads(payload: bytes) -> Any:
    """``joblib.load`` for the bytes of an uncompressed joblib file, with the allowlist applied."""
    if not payload.startswith(b"\x80"):
        raise UnsafePickleError("not an uncompressed joblib file (pickle protocol 2 or later)")
    return _AllowlistUnpickler(io.BytesIO(payload)).load()
