"""The score service's configuration: every setting, its environment variable and its default.

The CLI takes each of these as a flag too; a flag wins over the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regpipe_common.errors import RegpipeError
from regpipe_common.settings import env_str

# Setting name -> environment variable, in --help order.
ENV_VARS: dict[str, str] = {
    "input": "SCORE_INPUT",
    "model": "SCORE_MODEL",
    "output": "SCORE_OUTPUT",
    "key": "SCORE_KEY",
    "on_missing": "SCORE_ON_MISSING",
    "spec": "SCORE_SPEC",
}
ON_MISSING = ("skip", "fail")


@dataclass(frozen=True)
class ScoreSettings:
    """What one scoring run needs to know."""

    input: str
    model: str
    output: str
    key: tuple[str, ...] = ()
    on_missing: str = "skip"
    spec: str = ""  # a dataset spec: --input is raw CSV/Parquet files, not a prepared split

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", tuple(self.key or ()))
        self.validate()

    def validate(self) -> None:
        """Refuse values that cannot work, naming the setting."""
        checks = [
            (bool(self.input), "--input (SCORE_INPUT) is required"),
            (bool(self.model), "--model (SCORE_MODEL) is required"),
            (bool(self.output), "--output (SCORE_OUTPUT) is required"),
            (
                self.on_missing in ON_MISSING,
                f"--on-missing must be one of {', '.join(ON_MISSING)}, got {self.on_missing!r}",
            ),
            (
                len(set(self.key)) == len(self.key) and all(self.key),
                f"--key names must be distinct and non-empty, got {list(self.key)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise RegpipeError(message)


def parse_key(raw: str | None) -> list[str]:
    """``SCORE_KEY``: comma-separated column names."""
    return [name.strip() for name in (raw or "").split(",") if name.strip()]


def env_defaults() -> dict[str, Any]:
    """Every setting's value from the environment, or its default."""
    d = ScoreSettings.__dataclass_fields__
    return {
        "input": env_str(ENV_VARS["input"]),
        "model": env_str(ENV_VARS["model"]),
        "output": env_str(ENV_VARS["output"]),
        "key": parse_key(env_str(ENV_VARS["key"])),
        "on_missing": env_str(ENV_VARS["on_missing"], d["on_missing"].default),
        "spec": env_str(ENV_VARS["spec"], d["spec"].default),
    }
