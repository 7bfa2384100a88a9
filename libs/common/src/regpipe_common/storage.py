"""fsspec URL handling: a local path, ``file://`` and ``s3://`` URLs all work the same."""

from __future__ import annotations

import os
import posixpath
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def filesystem(url: str, **storage_options: Any) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the filesystem and the path inside it for ``url``."""
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    return fs, path


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def join(url: str, *parts: str) -> str:
    """Join path parts onto a URL or local path, keeping its scheme."""
    return posixpath.join(url.rstrip("/"), *parts)


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def read_bytes(url: str) -> bytes:
    """The whole file in one request: an object replaced meanwhile is read old or new, whole."""
    fs, path = filesystem(url)
    return fs.cat_file(path)


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write a file so that a reader sees either the old content or the whole new one.

    Local files are written beside the target and renamed over it (``os.replace``);
    an object store's single PUT is already atomic.
    """
    fs, path = filesystem(url)
    if is_local(fs):
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    else:
        fs.pipe_file(path, data)


def write_text_atomic(url: str, text: str) -> None:
    write_bytes_atomic(url, text.encode("utf-8"))
