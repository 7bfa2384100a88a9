"""A corpus of crafted pickles (tests/support/pickle_attacks.py) against the allowlist unpickler.

Each payload would run code, write a file or patch a class if it were unpickled by a looser
loader; each must be refused with a clear message, and the marker file must never appear.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
from pickle_attacks import corpus, eval_via_sklearn, write_marker
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_common.safe_pickle import ALLOWED, UnsafePickleError, safe_joblib_loads


@pytest.fixture(scope="module")
def attacks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    marker = tmp_path_factory.mktemp("attack") / "pwned"
    return marker, corpus(marker)


def test_the_main_chain_really_runs_code_without_the_allowlist(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickle.loads(eval_via_sklearn(write_marker(marker)))
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("name", sorted(corpus(Path("/nonexistent")).keys()))
def test_every_crafted_pickle_is_refused_and_runs_nothing(attacks, name: str) -> None:
    marker, payloads = attacks
    with pytest.raises(UnsafePickleError, match="not allowed in a model file"):
        safe_joblib_loads(payloads[name])
    assert not marker.exists()


def test_a_gadget_inside_a_joblib_object_array_is_refused(tmp_path: Path) -> None:
    """joblib writes object arrays as a nested pickle stream: it gets the same rules."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import builtins

            return (builtins.exec, (write_marker(marker),))

    array = np.empty(2, dtype=object)
    array[:] = ["ok", Evil()]
    buffer = io.BytesIO()
    joblib.dump({"categories": array}, buffer)
    with pytest.raises(UnsafePickleError, match=r"builtins\.exec is not allowed"):
        safe_joblib_loads(buffer.getvalue())
    assert not marker.exists()


def test_an_array_larger_than_the_file_is_refused_before_allocation() -> None:
    buffer = io.BytesIO()
    joblib.dump(np.arange(4.0), buffer)
    payload = buffer.getvalue()
    # The shape (4,) is pickled as BININT1 4, TUPLE1: claim 255 elements (same length, so the
    # pickle's framing still holds) while the file holds 4.
    assert payload.count(b"K\x04\x85") == 1
    huge = payload.replace(b"K\x04\x85", b"K\xff\x85")
    with pytest.raises(UnsafePickleError, match="does not fit in the model file"):
        safe_joblib_loads(huge)


def test_a_compressed_file_is_refused_clearly() -> None:
    buffer = io.BytesIO()
    joblib.dump(np.arange(3.0), buffer, compress=3)
    with pytest.raises(UnsafePickleError, match="not an uncompressed joblib file"):
        safe_joblib_loads(buffer.getvalue())


def test_allowed_classes_are_defined_by_scikit_learn_itself() -> None:
    for (module, qualname), obj in ALLOWED.items():
        if isinstance(obj, type) and module.startswith("sklearn"):
            assert obj.__module__ == module and obj.__qualname__ == qualname


# --- the joblib layout this loader reads (fails loudly if a joblib upgrade changes it) -------


def _models() -> list[object]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1, 100, 0.01]
    y = x @ [1.0, 0.02, 50.0]
    pipe = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(average=True))])
    return [pipe.fit(x, y), pipe]


def test_real_models_and_arrays_round_trip_exactly() -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=60), "c": list("abcdef") * 10})
    y = frame["a"] * 2 + (frame["c"] == "b")
    categorical = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["a"]),
                        ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist"), ["c"]),
                    ]
                ),
            ),
            ("sgd", SGDRegressor()),
        ]
    ).fit(frame, y)
    fortran = np.asfortranarray(rng.normal(size=(5, 4)))
    big_endian = np.arange(6, dtype=">f8").reshape(2, 3)
    doc = {
        "numeric": _models()[0],
        "categorical": categorical,
        "arrays": [fortran, big_endian, np.array(["x", None], dtype=object), np.int64(7)],
        "plain": {"a": [1, 2.5, "x"], "b": (None, True), "s": {1, 2}, "sl": slice(1, 5)},
    }
    buffer = io.BytesIO()
    joblib.dump(doc, buffer)
    loaded = safe_joblib_loads(buffer.getvalue())
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(loaded["numeric"].predict(x), doc["numeric"].predict(x))
    np.testing.assert_array_equal(loaded["categorical"].predict(frame), categorical.predict(frame))
    np.testing.assert_array_equal(loaded["arrays"][0], fortran)
    np.testing.assert_array_equal(loaded["arrays"][1], big_endian)
    assert loaded["arrays"][2].tolist() == ["x", None] and loaded["arrays"][3] == 7
    assert loaded["plain"] == doc["plain"]
