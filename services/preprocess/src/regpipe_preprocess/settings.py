"""The preprocess job's configuration: every flag has an environment variable and a default."""

from __future__ import annotations

from dataclasses import dataclass

# flag -> (environment variable, default, help)
OPTIONS: dict[str, tuple[str, object, str]] = {
    "input": (
        "PREPROCESS_INPUT",
        None,
        "CSV (plain or .gz) or Parquet input: a file, a glob or a folder; any fsspec URL",
    ),
    "spec": ("PREPROCESS_SPEC", None, "dataset spec (YAML)"),
    "output": ("PREPROCESS_OUTPUT", None, "output folder or URL prefix for the prepared dataset"),
    "test_fraction": ("PREPROCESS_TEST_FRACTION", 0.2, "fraction of rows in the test split"),
    "seed": ("PREPROCESS_SEED", 0, "seed of the split's row hash"),
    "max_rejected_fraction": (
        "PREPROCESS_MAX_REJECTED_FRACTION",
        0.01,
        "fail when more than this fraction of rows is malformed",
    ),
    "blocksize": ("PREPROCESS_BLOCKSIZE", "16MiB", "bytes of CSV per Dask task"),
    "progress_interval": ("PREPROCESS_PROGRESS_INTERVAL", 5.0, "seconds between progress lines"),
}


@dataclass(frozen=True)
class Settings:
    input: str
    spec: str
    output: str
    test_fraction: float = 0.2
    seed: int = 0
    max_rejected_fraction: float = 0.01
    blocksize: int = 16 * 2**20
    progress_interval: float = 5.0
