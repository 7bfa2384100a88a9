"""Model bundles: publishing, LATEST, and the loader's sha256, version and allowlist checks."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import SGDRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from regpipe_common import bundle
from regpipe_common.errors import BundleError
from regpipe_common.safe_pickle import UnsafePickleError, safe_joblib_loads

METADATA = {
    "features": ["a", "b", "c"],
    "target": "y",
    "metrics": {"rmse": 1.0, "mae": 0.8, "r2": 0.9, "rows": 10},
    "optimum": {"rmse": 1.0, "r2": 0.9},
    "params": {"epochs_run": 1},
    "dataset_fingerprint": "0" * 64,
    "feature_stats": {f: {"count": 10, "mean": 0.0, "var": 1.0} for f in ("a", "b", "c")},
    "target_stats": {"name": "y", "count": 10, "mean": 3.0, "var": 4.0},
}


def fitted_pipeline() -> Pipeline:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3)) * [1, 100, 0.01]
    y = x @ [1.0, 0.02, 50.0] + 3
    model = Pipeline([("scaler", StandardScaler()), ("sgd", SGDRegressor(average=True))])
    return model.fit(x, y)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, str, Pipeline]:
    model = fitted_pipeline()
    version = bundle.publish_bundle(str(tmp_path), "m", model, METADATA)
    return tmp_path / "m", version, model


def _rewrite(version_dir: Path, payload: bytes, **changes) -> None:
    """Replace model.joblib and give the metadata the matching sha256 (what an attacker can do)."""
    (version_dir / "model.joblib").write_bytes(payload)
    meta = json.loads((version_dir / "metadata.json").read_text())
    meta.update(sha256=hashlib.sha256(payload).hexdigest(), **changes)
    (version_dir / "metadata.json").write_text(json.dumps(meta))


def _dump(obj) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def test_publish_then_load_round_trip(published):
    model_dir, version, model = published
    assert (model_dir / "LATEST").read_text().strip() == version
    assert sorted(p.name for p in (model_dir / version).iterdir()) == [
        "metadata.json",
        "model.joblib",
    ]
    meta = json.loads((model_dir / version / "metadata.json").read_text())
    payload = (model_dir / version / "model.joblib").read_bytes()
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert set(bundle.REQUIRED_KEYS) <= set(meta)
    loaded = bundle.load_bundle(str(model_dir))
    assert loaded.version == version and loaded.features == ["a", "b", "c"]
    x = np.array([[1.0, 2.0, 3.0], [0.0, -5.0, 0.1]])
    np.testing.assert_array_equal(loaded.model.predict(x), model.predict(x))
    # A pinned version folder loads without LATEST.
    assert bundle.load_bundle(str(model_dir / version)).version == version


def test_versions_sort_by_time_and_latest_follows(tmp_path):
    model = fitted_pipeline()
    versions = [bundle.publish_bundle(str(tmp_path), "m", model, METADATA) for _ in range(3)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert bundle.read_latest(str(tmp_path / "m")) == versions[-1]
    assert bundle.read_latest(str(tmp_path / "other")) is None


def test_missing_required_metadata_is_refused_and_nothing_published(tmp_path):
    with pytest.raises(BundleError, match="optimum"):
        bundle.publish_bundle(
            str(tmp_path),
            "m",
            fitted_pipeline(),
            {k: v for k, v in METADATA.items() if k != "optimum"},
        )
    assert not (tmp_path / "m" / "LATEST").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"feature_stats": None}, "lacks required key.*feature_stats"),
        ({"target_stats": None}, "lacks required key.*target_stats"),
        (
            {"feature_stats": {"a": {"count": 1, "mean": 0.0, "var": 1.0}}},
            "feature_stats 'b' has no statistics",
        ),
        (
            {"target_stats": {"name": "y", "count": 1, "mean": 1.0}},
            "target_stats.*lacks statistic.*var",
        ),
        (
            {"target_stats": {"name": "y", "count": 1, "mean": "x", "var": 1.0}},
            "target_stats.*non-numeric",
        ),
    ],
)
def test_a_bundle_without_the_stats_predict_reads_is_refused(published, change, message):
    """feature_stats (every numeric feature) and target_stats are part of the bundle contract:
    predict reads their mean and var, so a bundle lacking them is refused when it loads."""
    model_dir, version, _ = published
    path = model_dir / version / "metadata.json"
    meta = json.loads(path.read_text())
    meta.update(change)
    path.write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))
    with pytest.raises(BundleError, match=message):
        bundle.load_bundle(str(model_dir))
    stripped = {k: v for k, v in {**METADATA, **change}.items() if v is not None}
    with pytest.raises(BundleError, match=message):
        bundle.publish_bundle(str(model_dir.parent), "m", fitted_pipeline(), stripped)
    assert bundle.read_latest(str(model_dir)) == version


def test_public_keys_are_the_contract_without_library_versions():
    """What GET /model shows: every required key a client needs, never the library versions."""
    assert "library_versions" not in bundle.PUBLIC_KEYS
    assert set(bundle.PUBLIC_KEYS) == set(bundle.REQUIRED_KEYS) - {"library_versions"} | {
        "categories"
    }


def test_tampered_model_is_refused(published):
    model_dir, version, _ = published
    path = model_dir / version / "model.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match metadata"):
        bundle.load_bundle(str(model_dir))


def test_truncated_model_is_refused(published):
    model_dir, version, _ = published
    path = model_dir / version / "model.joblib"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BundleError, match="truncated or tampered"):
        bundle.load_bundle(str(model_dir))


def test_truncated_model_with_matching_sha256_is_refused(published):
    model_dir, version, _ = published
    payload = (model_dir / version / "model.joblib").read_bytes()
    _rewrite(model_dir / version, payload[: len(payload) // 2])
    with pytest.raises(BundleError, match="cannot be unpickled"):
        bundle.load_bundle(str(model_dir))


def test_incomplete_bundle_is_refused(published):
    model_dir, version, _ = published
    (model_dir / version / "model.joblib").unlink()
    with pytest.raises(BundleError, match="incomplete"):
        bundle.load_bundle(str(model_dir))
    (model_dir / version / "metadata.json").unlink()
    with pytest.raises(BundleError, match=r"neither metadata\.json nor LATEST"):
        bundle.load_bundle(str(model_dir / version))


def test_other_scikit_learn_version_is_refused(published):
    model_dir, version, _ = published
    meta_path = model_dir / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["library_versions"]["scikit-learn"] = "0.24.2"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"scikit-learn 0\.24\.2"):
        bundle.load_bundle(str(model_dir))


class RunsACommand:
    """A crafted "model": unpickling it would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w')",))


class LoadsAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (np.load, (str(self.marker),))


@pytest.mark.parametrize(
    ("crafted", "global_name"),
    [(RunsACommand, "posix.system"), (EvalsCode, "builtins.eval"), (LoadsAFile, "numpy.load")],
)
def test_crafted_pickle_with_matching_sha256_is_refused_without_running(
    published, tmp_path, crafted, global_name
):
    model_dir, version, _ = published
    marker = tmp_path / "pwned"
    payload = _dump(crafted(marker))
    # Sanity: the payload really does run its command when unpickled without the allowlist.
    if crafted is RunsACommand:
        joblib.load(io.BytesIO(payload))
        assert marker.exists()
        marker.unlink()
    _rewrite(model_dir / version, payload)
    with pytest.raises(BundleError, match=f"refused to unpickle: global {global_name}"):
        bundle.load_bundle(str(model_dir))
    assert not marker.exists()


def test_crafted_pickle_hidden_inside_a_real_model_is_refused(published, tmp_path):
    model_dir, version, model = published
    marker = tmp_path / "pwned"
    model.steps[1][1].payload_ = RunsACommand(marker)
    _rewrite(model_dir / version, _dump(model))
    with pytest.raises(BundleError, match="not allowed in a model file"):
        bundle.load_bundle(str(model_dir))
    assert not marker.exists()


def test_allowlist_refuses_functions_from_allowed_packages():
    from sklearn.datasets import load_iris

    with pytest.raises(UnsafePickleError, match="load_iris is not allowed"):
        safe_joblib_loads(_dump(CallsLoadIris()))
    assert callable(load_iris)


class CallsLoadIris:
    def __reduce__(self):
        from sklearn.datasets import load_iris

        return (load_iris, ())


def test_allowlist_accepts_plain_containers_and_arrays():
    doc = {"a": [1, 2.5, "x"], "b": np.arange(5.0), "c": np.float64(3.0), "d": (None, True)}
    loaded = safe_joblib_loads(_dump(doc))
    assert loaded["a"] == [1, 2.5, "x"] and loaded["d"] == (None, True)
    np.testing.assert_array_equal(loaded["b"], np.arange(5.0))
    assert loaded["c"] == 3.0


class WritesAFile:
    """A class (not a function) outside the allowlist that truncates a file when called."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        from scipy.io import netcdf_file

        return (netcdf_file, (str(self.marker), "w"))


def test_classes_outside_sklearn_are_refused(tmp_path):
    marker = tmp_path / "written"
    refused = r"global scipy\.io\._netcdf\.netcdf_file is not allowed"
    with pytest.raises(UnsafePickleError, match=refused):
        safe_joblib_loads(_dump(WritesAFile(marker)))
    assert not marker.exists()


def test_classes_that_no_regpipe_model_holds_are_refused():
    from scipy import sparse

    with pytest.raises(UnsafePickleError, match="csr_matrix is not allowed"):
        safe_joblib_loads(_dump(sparse.csr_matrix(np.eye(3))))


def test_publishing_a_model_that_cannot_predict_never_moves_latest(published):
    model_dir, version, model = published
    with pytest.raises(BundleError, match="cannot predict on a probe row"):
        bundle.publish_bundle(str(model_dir.parent), "m", SGDRegressor(), METADATA)
    stats = {**METADATA["feature_stats"], "d": METADATA["feature_stats"]["a"]}
    wider = {**METADATA, "features": ["a", "b", "c", "d"], "feature_stats": stats}
    with pytest.raises(BundleError, match="probe row of its 4 features"):
        bundle.publish_bundle(str(model_dir.parent), "m", model, wider)
    assert (model_dir / "LATEST").read_text().strip() == version


def test_a_model_with_non_finite_output_is_refused(published):
    model_dir, version, model = published
    model.steps[1][1].intercept_ = np.array([np.nan])
    _rewrite(model_dir / version, _dump(model))
    with pytest.raises(BundleError, match="expected 2 finite values"):
        bundle.load_bundle(str(model_dir))


def _category_model() -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    x = np.array([[1.0, "AA"], [2.0, "UA"], [3.0, "AA"], [4.0, "DL"]], dtype=object)
    encode = ColumnTransformer(
        [
            ("number", StandardScaler(), [0]),
            ("category", OneHotEncoder(categories=[["AA", "UA"]], handle_unknown="ignore"), [1]),
        ]
    )
    return Pipeline([("encode", encode), ("sgd", SGDRegressor(max_iter=5, tol=None))]).fit(
        x, np.array([1.0, 2.0, 3.0, 4.0])
    )


def test_a_category_model_is_probed_with_its_levels_and_loads(tmp_path):
    metadata = {
        **METADATA,
        "features": ["distance", "carrier"],
        "feature_stats": {"distance": {"count": 4, "mean": 2.5, "var": 1.25}},
        "categories": {"carrier": {"levels": ["AA", "UA"], "infrequent_share": 0.25}},
    }
    rows = bundle.probe_rows(metadata)
    assert rows.dtype == object and rows[:, 1].tolist() == ["AA", "AA"]
    assert rows[:, 0].tolist() == [2.5, 0.0]
    version = bundle.publish_bundle(str(tmp_path), "m", _category_model(), metadata)
    loaded = bundle.load_bundle(str(tmp_path / "m"))
    assert loaded.version == version
    assert bundle.category_levels(loaded.metadata) == {"carrier": ["AA", "UA"]}
    assert np.isfinite(loaded.probe_prediction)
