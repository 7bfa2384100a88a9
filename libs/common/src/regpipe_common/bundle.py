"""Model bundles: ``models/<name>/<version>/{model.joblib,metadata.json}`` and ``LATEST``.

Publishing writes the version folder under a staging name, moves it into place, writes
``metadata.json`` last, loads the published version back exactly as a server would, and only
then replaces ``LATEST`` atomically. Loading reads the metadata, checks the sha256 of
``model.joblib`` before unpickling it, refuses a model made with another scikit-learn minor
version, unpickles through an allowlist (:mod:`.safe_pickle`), and makes the model predict on
a probe built from the metadata: a bundle that cannot predict is refused, never served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import platform
import warnings
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import sklearn

from . import dataset, publish, storage
from .errors import BundleError, BundleNotFoundError
from .publish import new_version  # bundle versions are named like dataset versions
from .registry import LATEST_FILE, move_latest, read_latest  # noqa: F401 (read_latest: re-export)
from .safe_pickle import UnsafePickleError, safe_joblib_loads

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
# Optional: the training report, one self-contained page that fetches nothing.
REPORT_FILE = "report.html"
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# The keys of every bundle's metadata.json, checked when a bundle is published and loaded.
# ``feature_stats`` (count/mean/var of every numeric feature) and ``target_stats`` are the
# manifest's statistics: predict reads them (drift, predicted-value buckets, examples).
REQUIRED_KEYS = (
    "name",
    "version",
    "features",
    "target",
    "metrics",
    "optimum",
    "params",
    "dataset_fingerprint",
    "feature_stats",
    "target_stats",
    "library_versions",
    "created_at",
    "sha256",
)
# Optional: a model with category features (absent or empty: numeric-only).
OPTIONAL_KEYS = ("categories",)
# What a client may see of the metadata (predict's GET /model): no library versions, no paths.
PUBLIC_KEYS = (*(k for k in REQUIRED_KEYS if k != "library_versions"), *OPTIONAL_KEYS)


@dataclass(frozen=True)
class Bundle:
    """A verified, loaded model and its metadata."""

    model: Any
    metadata: dict[str, Any]
    url: str
    probe_prediction: float | None = None  # on the training means (``probe_rows``' first row)

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def version(self) -> str:
        return self.metadata["version"]

    @property
    def features(self) -> list[str]:
        return list(self.metadata["features"])


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def publish_bundle(
    models_url: str,
    name: str,
    model: Any,
    metadata: dict[str, Any],
    *,
    version: str | None = None,
    files: dict[str, bytes] | None = None,
    promote: bool = True,
) -> str:
    """Publish ``model`` with ``metadata`` as a new version of ``name``; return the version.

    The keys ``name``, ``version``, ``sha256``, ``library_versions`` and ``created_at`` are
    filled in here. ``files`` (e.g. ``report.html``) are written beside the model, before the
    metadata. ``LATEST`` moves to the new version (and the history logs it) only if ``promote``.
    """
    version = version or new_version()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    payload = buffer.getvalue()
    doc = {
        **metadata,
        "name": name,
        "version": version,
        "library_versions": library_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sha256": sha256_hex(payload),
    }
    check_metadata(doc, "metadata")
    model_root = storage.join(models_url, name)
    version_url = storage.join(model_root, version)
    with publish.staging_folder(version_url) as staging:
        storage.write_bytes_atomic(storage.join(staging, MODEL_FILE), payload)
        for file_name, data in (files or {}).items():
            storage.write_bytes_atomic(storage.join(staging, file_name), data)
        publish.publish_folder(staging, version_url, doc, manifest_name=METADATA_FILE)
    load_bundle(version_url)  # what a server will load must verify and predict first
    if promote:
        move_latest(model_root, version, "publish")
    return version


def resolve_version_url(model_uri: str) -> str:
    """A pinned version folder is used as is; a model folder follows its ``LATEST``."""
    model_uri = model_uri.rstrip("/")
    if storage.exists(storage.join(model_uri, METADATA_FILE)):
        return model_uri
    latest_url = storage.join(model_uri, LATEST_FILE)
    try:
        version = storage.read_text(latest_url).strip()
    except FileNotFoundError:
        raise BundleNotFoundError(
            f"no model at {model_uri}: neither {METADATA_FILE} nor {LATEST_FILE} exists"
        ) from None
    if not version or "/" in version or version.startswith("."):
        raise BundleError(f"{latest_url} does not name a version: {version!r}")
    return storage.join(model_uri, version)


def older_version_urls(model_uri: str, than: str) -> list[str]:
    """The version folders of a model folder older than ``than``, newest first.

    Versions sort by time, so names compare as ages; staging and hidden folders are skipped.
    """
    fs, path = storage.filesystem(model_uri)
    try:
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    except FileNotFoundError:
        return []
    versions = [n for n in names if n[:1].isdigit() and ".staging-" not in n and n < than]
    return [storage.join(model_uri.rstrip("/"), n) for n in sorted(versions, reverse=True)]


def read_metadata(version_url: str) -> dict[str, Any]:
    url = storage.join(version_url, METADATA_FILE)
    try:
        doc = publish.read_json(url)
    except FileNotFoundError:
        raise BundleNotFoundError(f"{url} not found: the bundle is incomplete") from None
    except ValueError:
        raise BundleError(f"{url} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise BundleError(f"{url} is not a JSON object")
    check_metadata(doc, url)
    return doc


def check_metadata(doc: dict[str, Any], where: str) -> None:
    """Refuse metadata without a required key or without the statistics predict reads."""
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise BundleError(f"{where} lacks required key(s): {', '.join(missing)}")
    stats, levels = doc["feature_stats"], category_levels(doc)
    if not isinstance(stats, dict):
        raise BundleError(f"{where}: feature_stats is not an object")
    for feature in doc["features"] if isinstance(doc["features"], list) else []:
        if feature not in levels:
            what = f"{where}: feature_stats {feature!r}"
            dataset.check_stats(stats.get(feature), what, BundleError)
    dataset.check_stats(doc["target_stats"], f"{where}: target_stats", BundleError)


def check_compatible(metadata: dict[str, Any]) -> None:
    """Refuse a model pickled by another scikit-learn major.minor version."""
    made_with = str(metadata.get("library_versions", {}).get("scikit-learn", ""))
    if made_with.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise BundleError(
            f"model {metadata.get('name')}/{metadata.get('version')} was made with "
            f"scikit-learn {made_with or 'unknown'}; this process runs {sklearn.__version__} "
            "(the major.minor versions must match)"
        )


def load_bundle(model_uri: str) -> Bundle:
    """Resolve, verify and load a bundle. Any problem is a :class:`BundleError`."""
    version_url = resolve_version_url(model_uri)
    metadata = read_metadata(version_url)
    check_compatible(metadata)
    model_url = storage.join(version_url, MODEL_FILE)
    try:
        payload = storage.read_bytes(model_url)
    except FileNotFoundError:
        raise BundleNotFoundError(f"{model_url} not found: the bundle is incomplete") from None
    digest = sha256_hex(payload)
    if digest != metadata["sha256"]:
        raise BundleError(
            f"{model_url}: sha256 {digest} does not match metadata ({metadata['sha256']}); "
            "the file is truncated or tampered with"
        )
    try:
        model = safe_joblib_loads(payload)
    except UnsafePickleError as exc:
        raise BundleError(f"{model_url}: refused to unpickle: {exc}") from None
    except Exception as exc:
        raise BundleError(f"{model_url}: cannot be unpickled: {exc}") from None
    probe = check_predicts(model, metadata, model_url)
    return Bundle(model=model, metadata=metadata, url=version_url, probe_prediction=probe)


def category_levels(metadata: dict[str, Any]) -> dict[str, list[str]]:
    """Category feature -> its kept levels, in the encoder's column order (empty: numeric-only)."""
    return {f: list(c["levels"]) for f, c in (metadata.get("categories") or {}).items()}


def probe_rows(metadata: dict[str, Any]) -> np.ndarray:
    """Two rows of the model's features: the training means (zeros without stats), then zeros.

    A model with category features takes an object array: its probe rows hold the first kept
    level of each category feature (an unseen level when none is kept) in both rows.
    """
    stats = metadata.get("feature_stats") or {}
    levels = category_levels(metadata)
    if not levels:
        means = [float((stats.get(f) or {}).get("mean", 0.0)) for f in metadata["features"]]
        return np.array([means, [0.0] * len(means)], dtype=np.float64)
    rows = np.empty((2, len(metadata["features"])), dtype=object)
    for j, feature in enumerate(metadata["features"]):
        if feature in levels:
            rows[:, j] = (levels[feature] or [""])[0]
        else:
            rows[:, j] = [float((stats.get(feature) or {}).get("mean", 0.0)), 0.0]
    return rows


def check_predicts(model: Any, metadata: dict[str, Any], where: str) -> float:
    """Refuse a model that cannot predict finite values for the features its metadata names.

    Returns the prediction for the first probe row (the training means).
    """
    if not isinstance(metadata.get("features"), list) or not metadata["features"]:
        raise BundleError(f"{where}: the metadata names no features")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "X does not have feature names"
            out = np.asarray(model.predict(probe_rows(metadata)), dtype=np.float64)
    except Exception as exc:
        raise BundleError(
            f"{where}: refused: the model cannot predict on a probe row of its "
            f"{len(metadata['features'])} features ({type(exc).__name__}: {exc})"
        ) from None
    if out.shape != (2,) or not np.isfinite(out).all():
        raise BundleError(
            f"{where}: refused: the probe prediction is {out.tolist()!r} (expected 2 finite values)"
        )
    return float(out[0])
