"""The score service's settings, each declared once: flag, environment variable, default, help.

A flag wins over the environment variable, which wins over the default. The README's score
settings table is :data:`SCHEMA`'s ``markdown_table()``.
"""

from __future__ import annotations

from typing import Any

from regpipe_common.settings import Schema, Setting

ON_MISSING = ("skip", "fail")

SCHEMA = Schema(
    Setting(
        "input",
        str,
        None,
        "a prepared dataset's split to score (<prepared>/test or <prepared>/train), or with "
        "--spec raw CSV (plain or .gz) or Parquet input: a file, a glob or a folder",
        "SCORE_INPUT",
        required=True,
    ),
    Setting(
        "model",
        str,
        None,
        "model folder <models>/<name> (follows LATEST) or <models>/<name>@<version>",
        "SCORE_MODEL",
        required=True,
    ),
    Setting(
        "output",
        str,
        None,
        "folder or URL for part-*.parquet and manifest.json (written last)",
        "SCORE_OUTPUT",
        required=True,
    ),
    Setting(
        "key",
        str,
        (),
        "key column(s) copied to the output (default: the spec's row key when the parts hold "
        "it); the variable is comma-separated",
        "SCORE_KEY",
        multiple=True,
    ),
    Setting(
        "on_missing",
        str,
        "skip",
        "a row with a missing or non-finite feature: skip it (counted in rows_rejected) or "
        "fail the job naming file, row and column",
        "SCORE_ON_MISSING",
        choices=ON_MISSING,
    ),
    Setting(
        "spec",
        str,
        "",
        "dataset spec (YAML) of raw input, validated and cleaned as regpipe-preprocess does "
        "(malformed rows go to rejected/rejected.jsonl)",
        "SCORE_SPEC",
    ),
)

ScoreSettings = SCHEMA.dataclass("ScoreSettings")


def load(values: dict[str, Any]) -> ScoreSettings:
    """:data:`ScoreSettings` from resolved values; repeated ``--key`` names are refused."""
    key = values["key"]
    if len(set(key)) != len(key):
        raise SCHEMA["key"].error(",".join(key), "names a column twice")
    return ScoreSettings(**values)
