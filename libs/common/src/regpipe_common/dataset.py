"""The prepared-dataset contract: layout, manifest format, its writer (preprocess) and its
reader (train).

Layout of a dataset at ``<url>``::

    <url>/manifest.json                     written last, atomically: the pointer
    <url>/<version>/train/part-*.parquet    one folder per published run
    <url>/<version>/test/part-*.parquet
    <url>/<version>/rejected/rejected.jsonl

A run writes its parts into a fresh ``<version>`` folder that no reader knows about, then
replaces ``manifest.json`` (one atomic rename or PUT) whose ``splits.*[].path`` name files in
that folder, and only then removes what the manifest no longer names. The manifest also names
the version it replaced (``previous_version``), which is kept until the next run: a reader
(a train job) that loaded the old manifest a moment before keeps its files. A kill at any moment
leaves the previous dataset or the new one whole; the leftovers of killed runs are removed by
the next run. Paths in the manifest are relative to ``<url>``, so datasets in the older flat
layout (``<url>/train/...``, no version folder) load the same way.
"""

from __future__ import annotations

import re
from typing import Any

from . import publish, storage
from .errors import DataError, RegpipeError

MANIFEST = "manifest.json"
FORMAT = "regpipe-dataset/1"
SPLITS = ("train", "test")
REQUIRED_KEYS = ("features", "target", "splits", "fingerprint")
STAT_KEYS = ("count", "mean", "var")
REJECTED = "rejected/rejected.jsonl"
# Every numeric value in a prepared dataset is at most this large in magnitude: squares and
# sums of squares (variances, X'X) of any number of such rows stay finite in float64.
MAX_ABS_VALUE = 1e100
_VERSION = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")
_FLAT_FOLDERS = ("train", "test", "rejected")


class ManifestError(DataError):
    """The manifest is missing, unreadable or incomplete."""


# ---- writer (preprocess) ------------------------------------------------------------------


def new_version_url(url: str) -> str:
    """A fresh, unpublished version folder inside the dataset at ``url``."""
    version_url = storage.join(url, publish.new_version())
    fs, path = storage.filesystem(version_url)
    fs.makedirs(path, exist_ok=True)
    return version_url


def version_of(version_url: str) -> str:
    return version_url.rstrip("/").rsplit("/", 1)[-1]


def publish_version(url: str, version_url: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """Point ``<url>/manifest.json`` at the complete ``version_url``, then drop older data.

    ``manifest`` holds paths relative to the version folder; they are rewritten relative to
    ``url``, and ``version`` names the folder. Returns the published manifest.
    """
    version = version_of(version_url)
    previous = _named_versions(url)[0]
    doc = {**manifest, "version": version, "previous_version": previous}
    doc["splits"] = {
        split: [{**e, "path": f"{version}/{e['path']}"} for e in entries]
        for split, entries in manifest["splits"].items()
    }
    if manifest.get("rejected"):
        doc["rejected"] = f"{version}/{manifest['rejected']}"
    publish.write_json_atomic(storage.join(url, MANIFEST), doc)
    remove_stale(url)
    return doc


def remove_stale(url: str) -> list[str]:
    """Remove what the current manifest does not name (its version and the one it replaced):
    version folders of killed or older runs, a replaced flat-layout dataset, staging folders of
    older releases. Returns them."""
    fs, root = storage.filesystem(url)
    fs.invalidate_cache()
    root = root.rstrip("/")
    current, previous = _named_versions(url)
    kept = {current, previous} - {None}
    entries = fs.ls(root, detail=False) if fs.isdir(root) else []
    stale = [p for p in entries if _is_stale(p.rstrip("/").rsplit("/", 1)[-1], current, kept)]
    stale += fs.glob(f"{root}.staging-*")
    for path in stale:
        publish.remove_folder(path if storage.is_local(fs) else fs.unstrip_protocol(path))
    return stale


def _is_stale(name: str, current: str | None, kept: set[str | None]) -> bool:
    if _VERSION.match(name):
        return name not in kept
    if name in _FLAT_FOLDERS:
        return current is not None  # a flat-layout dataset that a versioned one replaced
    return name.startswith(f".{MANIFEST}.tmp-")


def _named_versions(url: str) -> tuple[str | None, str | None]:
    """The manifest's ``version`` and ``previous_version``; None for no manifest, a flat layout
    or an unreadable one (then the flat folders are kept: they may be the data it describes)."""
    try:
        doc = publish.read_json(storage.join(url, MANIFEST))
    except (FileNotFoundError, ValueError):
        return None, None
    doc = doc if isinstance(doc, dict) else {}
    return _version_name(doc.get("version")), _version_name(doc.get("previous_version"))


def _version_name(value: Any) -> str | None:
    return value if isinstance(value, str) and _VERSION.match(value) else None


# ---- reader (train) -----------------------------------------------------------------------


def read_manifest(url: str) -> dict[str, Any]:
    """Read and check ``<url>/manifest.json``; any problem is a :class:`ManifestError`."""
    manifest_url = storage.join(url, MANIFEST)
    try:
        doc = publish.read_json(manifest_url)
    except FileNotFoundError:
        raise ManifestError(
            f"{manifest_url} not found: the dataset is missing or incomplete "
            "(the preprocess service writes the manifest last)"
        ) from None
    except ValueError as exc:
        raise ManifestError(f"{manifest_url} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{manifest_url} is not a JSON object")
    check_manifest(doc, manifest_url)
    return doc


def part_url(url: str, entry: dict[str, Any]) -> str:
    """The URL of one ``splits.*[]`` entry of the dataset at ``url``."""
    return storage.join(url, entry["path"])


def check_manifest(doc: dict[str, Any], where: str) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise ManifestError(f"{where} is incomplete: missing key(s) {', '.join(missing)}")
    if doc.get("format", FORMAT) != FORMAT:
        raise ManifestError(f"{where}: format {doc['format']!r} is not {FORMAT!r}")
    features = doc["features"]
    # Numeric features' stats; a dataset of category features only has none.
    if not isinstance(features, dict) or not (features or doc.get("categories")):
        raise ManifestError(f"{where}: 'features' must name at least one feature with its stats")
    for name, stats in features.items():
        check_stats(stats, f"{where}: feature {name!r}")
    target = doc["target"]
    if not isinstance(target, dict) or "name" not in target:
        raise ManifestError(f"{where}: 'target' lacks its 'name'")
    check_stats(target, f"{where}: target {target['name']!r}")
    splits = doc["splits"]
    for split in SPLITS:
        if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
            raise ManifestError(f"{where}: 'splits' lacks the {split!r} partition list")
        for i, entry in enumerate(splits[split]):
            if not isinstance(entry, dict) or "path" not in entry or "rows" not in entry:
                raise ManifestError(f"{where}: {split} partition #{i} lacks 'path' or 'rows'")


def check_stats(stats: Any, what: str, error: type[RegpipeError] = ManifestError) -> None:
    """Refuse statistics without finite ``STAT_KEYS`` or with a negative variance (the manifest's
    per-column stats; a bundle's ``feature_stats``/``target_stats`` are copies of them)."""
    if not isinstance(stats, dict):
        raise error(f"{what} has no statistics")
    missing = [k for k in STAT_KEYS if k not in stats]
    if missing:
        raise error(f"{what} lacks statistic(s) {', '.join(missing)}")
    values = [stats[k] for k in STAT_KEYS]
    finite = all(
        isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < float("inf")
        for v in values
    )
    if not finite:
        raise error(f"{what} has a non-numeric or non-finite statistic: {stats}")
    if stats["var"] < 0:
        raise error(f"{what} has a negative variance")
