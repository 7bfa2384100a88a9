"""Which Parquet parts make up the input: a split of a prepared dataset.

:func:`resolve_input` is the one place that knows the prepared dataset's layout (see
docs/contracts.md); swap it for the shared reader when ``regpipe_common`` has one.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

from regpipe_common import publish, storage
from regpipe_common.errors import DataError

MANIFEST = "manifest.json"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class ScoreInput:
    """The parts to score, in order, and what the prepared manifest says about them."""

    url: str
    split: str
    parts: list[str]
    manifest: dict[str, Any]

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.manifest.get("fingerprint", ""))

    @property
    def fingerprint(self) -> str:
        """The split's identity: the dataset's content fingerprint and the split's name."""
        return hashlib.sha256(f"{self.dataset_fingerprint}:{self.split}".encode()).hexdigest()

    @property
    def spec_key(self) -> list[str]:
        key = (self.manifest.get("spec") or {}).get("key") or []
        return [key] if isinstance(key, str) else list(key)


def resolve_input(url: str) -> ScoreInput:
    """``<prepared>/<split>`` → its part URLs from ``<prepared>/manifest.json``."""
    url = url.rstrip("/")
    split = posixpath.basename(url)
    dataset_url = url[: -len(split)].rstrip("/") or "."
    if split not in SPLITS:
        raise DataError(
            f"--input {url}: expected a prepared dataset's split (<prepared>/test or "
            "<prepared>/train)"
        )
    manifest_url = storage.join(dataset_url, MANIFEST)
    try:
        manifest = publish.read_json(manifest_url)
    except FileNotFoundError:
        raise DataError(
            f"{manifest_url} not found: {url} is not a split of a whole prepared dataset "
            "(the preprocess service writes the manifest last)"
        ) from None
    except ValueError as exc:
        raise DataError(f"{manifest_url} is not valid JSON: {exc}") from None
    entries = (manifest.get("splits") or {}).get(split) if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        raise DataError(f"{manifest_url}: 'splits' lacks the {split!r} partition list")
    parts = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "path" not in entry:
            raise DataError(f"{manifest_url}: {split} partition #{i} lacks 'path'")
        if int(entry.get("rows", 1)) > 0:
            parts.append(storage.join(dataset_url, entry["path"]))
    return ScoreInput(url=url, split=split, parts=parts, manifest=manifest)
