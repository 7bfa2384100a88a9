"""Which Parquet parts make up the input: a split of a prepared dataset.

The prepared dataset is read through its contract, :mod:`regpipe_common.dataset`.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any

from regpipe_common import dataset
from regpipe_common.errors import DataError

SPLITS = dataset.SPLITS


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
    """``<prepared>/<split>`` → its part URLs, from the dataset's checked manifest."""
    url = url.rstrip("/")
    split = posixpath.basename(url)
    dataset_url = url[: -len(split)].rstrip("/") or "."
    if split not in SPLITS:
        raise DataError(
            f"--input {url}: expected a prepared dataset's split (<prepared>/test or "
            "<prepared>/train)"
        )
    manifest = dataset.read_manifest(dataset_url)
    parts = [
        dataset.part_url(dataset_url, entry)
        for entry in manifest["splits"][split]
        if int(entry["rows"]) > 0
    ]
    return ScoreInput(url=url, split=split, parts=parts, manifest=manifest)
