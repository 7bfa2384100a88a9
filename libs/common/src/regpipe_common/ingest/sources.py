"""Find the input files and cut them into work units.

A unit is what one Dask task reads: a byte range of a plain CSV file (cut on line ends), a whole
gzip CSV file (read as a stream, block by block), or one row group of a Parquet file.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

import pyarrow.parquet as pq

from regpipe_common import storage
from regpipe_common.errors import DataError

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
GZIP_SUFFIXES = (".csv.gz", ".txt.gz", ".tsv.gz", ".gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class InputFile:
    url: str  # full URL with the scheme, as given
    kind: str  # "csv", "csv.gz" or "parquet"
    size: int


@dataclass(frozen=True)
class Unit:
    index: int
    file: InputFile
    offset: int = 0  # byte offset (csv) or row group (parquet)
    length: int = -1  # bytes (csv); -1 = whole file

    @property
    def starts_file(self) -> bool:
        return self.offset == 0


def kind_of(path: str) -> str | None:
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(GZIP_SUFFIXES):
        return "csv.gz"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def find_inputs(url: str) -> list[InputFile]:
    """One file, a glob or a folder; files sorted by path. Errors name the URL."""
    fs, path = storage.filesystem(url)
    if any(ch in path for ch in "*?["):
        paths = sorted(p for p in fs.glob(path) if fs.isfile(p))
        if not paths:
            raise DataError(f"no input files match {url}")
    elif not fs.exists(path):
        raise DataError(f"input not found: {url}")
    elif fs.isdir(path):
        root = path.rstrip("/")
        paths = sorted(p for p in fs.find(path) if kind_of(p) and not _hidden(p[len(root) :]))
        if not paths:
            raise DataError(f"no CSV or Parquet files in folder {url}")
    else:
        paths = [path]
    files = []
    for p in paths:
        kind = kind_of(p)
        if kind is None:
            raise DataError(f"{p}: unknown file type (expected .csv, .csv.gz or .parquet)")
        full = p if storage.is_local(fs) else fs.unstrip_protocol(p)
        files.append(InputFile(url=full, kind=kind, size=int(fs.size(p) or 0)))
    return files


def _hidden(relative: str) -> bool:
    """Skip dot-files and dot-folders (e.g. a staging folder) inside an input folder."""
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def plan_units(files: list[InputFile], blocksize: int) -> list[Unit]:
    units: list[Unit] = []
    for f in files:
        if f.kind == "csv":
            for offset in range(0, max(f.size, 1), blocksize):
                units.append(Unit(len(units), f, offset=offset, length=blocksize))
        elif f.kind == "csv.gz":
            units.append(Unit(len(units), f))
        else:
            fs, path = storage.filesystem(f.url)
            with fs.open(path, "rb") as handle:
                meta = pq.ParquetFile(handle).metadata
            for rg in range(meta.num_row_groups):
                units.append(Unit(len(units), f, offset=rg))
    return units


def open_text_head(f: InputFile, nbytes: int) -> bytes:
    """The first ``nbytes`` (decompressed) bytes of a CSV file, cut after the last full line."""
    fs, path = storage.filesystem(f.url)
    compression = "gzip" if f.kind == "csv.gz" else None
    with fs.open(path, "rb", compression=compression) as handle:
        head = handle.read(nbytes)
        more = handle.read(1)
    if more and b"\n" in head:
        head = head[: head.rindex(b"\n") + 1]
    return head


def csv_header(head: bytes, delimiter: str, url: str) -> list[str]:
    """The column names of the first line; a UTF-8 byte-order mark before it is not a name."""
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r").removeprefix(codecs.BOM_UTF8)
    if not first_line.strip():
        raise DataError(f"{url}: file is empty (no header line)")
    try:
        return next(csv.reader(io.StringIO(first_line.decode("utf-8")), delimiter=delimiter))
    except UnicodeDecodeError:
        raise DataError(f"{url}: header line is not UTF-8 text") from None
