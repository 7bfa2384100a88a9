"""Atomic publishing of a folder: data is written under a temporary name, then made visible,
and its manifest is written last.

A reader that sees ``<folder>/<manifest>`` sees a whole folder. While a job runs, or after it
was killed, the target holds either its previous complete content or no manifest at all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import storage


def new_version(now: dt.datetime | None = None) -> str:
    """A name that sorts by creation time and is unique: ``20261126T071500123456Z-1a2b3c``."""
    now = now or dt.datetime.now(dt.UTC)
    return now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


@contextmanager
def staging_folder(target_url: str) -> Iterator[str]:
    """Yield a fresh staging URL beside ``target_url``; it is removed if the block fails."""
    staging = f"{target_url.rstrip('/')}.staging-{uuid.uuid4().hex[:12]}"
    fs, path = storage.filesystem(staging)
    fs.makedirs(path, exist_ok=True)
    try:
        yield staging
    except BaseException:
        remove_folder(staging)
        raise


def remove_folder(url: str) -> None:
    fs, path = storage.filesystem(url)
    if storage.is_local(fs):
        shutil.rmtree(path, ignore_errors=True)
    elif fs.exists(path):
        fs.rm(path, recursive=True)


def publish_folder(
    staging_url: str,
    target_url: str,
    manifest: dict[str, Any],
    manifest_name: str = "manifest.json",
) -> None:
    """Move the staged data to ``target_url``, then write the manifest there, last.

    An existing target first loses its manifest (so no reader takes it for whole while it is
    being replaced), then its content.
    """
    fs, target = storage.filesystem(target_url)
    _, staging = storage.filesystem(staging_url)
    old_manifest = f"{target.rstrip('/')}/{manifest_name}"
    if fs.exists(old_manifest):
        fs.rm(old_manifest)
    if fs.exists(target):
        remove_folder(target_url)
    if storage.is_local(fs):
        os.makedirs(os.path.dirname(target.rstrip("/")) or ".", exist_ok=True)
        os.replace(staging, target)
    else:
        # Object stores have no rename: copy each staged object, then drop the staging prefix.
        staging = staging.rstrip("/")
        for path in fs.find(staging):
            fs.copy(path, target.rstrip("/") + path[len(staging) :])
        fs.rm(staging, recursive=True)
    write_json_atomic(storage.join(target_url, manifest_name), manifest)


def write_json_atomic(url: str, obj: Any) -> None:
    storage.write_text_atomic(url, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(url: str) -> Any:
    return json.loads(storage.read_text(url))
