"""What makes up the input: a split of a prepared dataset (its Parquet parts, read through
:mod:`regpipe_common.dataset`), or raw CSV/Parquet files with a dataset spec (cut into work
units and validated by :mod:`regpipe_common.ingest`, exactly as preprocess does)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass
from typing import Any

from regpipe_common import dataset, storage
from regpipe_common.errors import DataError
from regpipe_common.ingest.sources import InputFile, Unit, find_inputs, plan_units
from regpipe_common.ingest.validate import validate_file
from regpipe_common.spec import DatasetSpec, load_spec

SPLITS = dataset.SPLITS
RAW_BLOCK_BYTES = 16 * 2**20  # CSV bytes per Dask task: preprocess's default --blocksize


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
            "<prepared>/train); raw CSV/Parquet files need --spec"
        )
    manifest = dataset.read_manifest(dataset_url)
    parts = [
        dataset.part_url(dataset_url, entry)
        for entry in manifest["splits"][split]
        if int(entry["rows"]) > 0
    ]
    return ScoreInput(url=url, split=split, parts=parts, manifest=manifest)


@dataclass(frozen=True)
class RawInput:
    """Raw files checked against the spec (columns, types), cut into work units."""

    url: str
    spec: DatasetSpec
    files: list[InputFile]
    headers: dict[str, list[str]]  # CSV header of each file (Parquet: its column names)
    units: list[Unit]

    @property
    def fingerprint(self) -> str:
        """The spec's digest and each file's URL, size and storage checksum."""
        listed = [[f.url, f.size, _checksum(f.url)] for f in self.files]
        doc = json.dumps({"spec": self.spec.digest(), "files": listed}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()


def resolve_raw(url: str, spec_url: str) -> RawInput:
    """Raw CSV/Parquet input: find, validate (before any work starts) and plan the units."""
    spec = load_spec(spec_url)
    files = find_inputs(url)
    headers = {f.url: validate_file(f, spec) for f in files}
    return RawInput(url, spec, files, headers, plan_units(files, RAW_BLOCK_BYTES))


def _checksum(url: str) -> str:
    fs, path = storage.filesystem(url)
    return str(fs.checksum(path))
