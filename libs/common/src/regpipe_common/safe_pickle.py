"""Unpickle joblib files through an allowlist of globals.

A sha256 in the metadata only proves that ``model.joblib`` matches ``metadata.json``; anybody
who can write one can write the other. So every global that the pickle names is checked
*before* it is imported or resolved: only classes from scikit-learn and SciPy's sparse
matrices, and a short list of numpy/joblib reconstruction helpers, are allowed. ``os.system``,
``builtins.eval``, ``numpy.load`` and everything else are refused with :class:`UnsafePickleError`.
"""

from __future__ import annotations

import io
from typing import Any

from joblib import numpy_pickle_utils
from joblib.numpy_pickle import NumpyUnpickler

# (module, name) pairs a real scikit-learn model pickle needs beyond estimator classes.
ALLOWED_GLOBALS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random.mtrand", "RandomState"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("builtins", "slice"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
    }
)
# Modules whose *classes* (never functions) may be reconstructed. Only SciPy's sparse matrices:
# other SciPy classes can touch files when called (``scipy.io.netcdf_file(path, "w")``).
CLASS_MODULE_PREFIXES = ("sklearn.", "scipy.sparse.", "numpy.dtypes")


class UnsafePickleError(Exception):
    """The pickle names a global outside the allowlist."""


class _AllowlistUnpickler(NumpyUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module.startswith(CLASS_MODULE_PREFIXES) and name.isidentifier():
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
            raise UnsafePickleError(f"global {module}.{name} is not a class")
        raise UnsafePickleError(f"global {module}.{name} is not allowed in a model file")


def safe_joblib_loads(payload: bytes) -> Any:
    """``joblib.load`` for bytes, with the allowlist applied."""
    with numpy_pickle_utils._validate_fileobject_and_memmap(
        io.BytesIO(payload), "model.joblib", None
    ) as (fobj, _):
        return _AllowlistUnpickler("model.joblib", fobj, True, mmap_mode=None).load()
