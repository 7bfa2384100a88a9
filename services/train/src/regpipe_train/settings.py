"""The train service's configuration: every setting, its environment variable and its default.

The CLI takes each of these as a flag too; a flag wins over the environment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from regpipe_common.errors import RegpipeError
from regpipe_common.settings import env_bool, env_float, env_int, env_str

# Setting name -> environment variable, in --help order.
ENV_VARS: dict[str, str] = {
    "data": "TRAIN_DATA",
    "models": "TRAIN_MODELS",
    "name": "TRAIN_NAME",
    "epochs": "TRAIN_EPOCHS",
    "batch_size": "TRAIN_BATCH_SIZE",
    "seed": "TRAIN_SEED",
    "resume": "TRAIN_RESUME",
    "patience": "TRAIN_PATIENCE",
    "tolerance": "TRAIN_TOLERANCE",
    "validation_fraction": "TRAIN_VALIDATION_FRACTION",
    "alpha": "TRAIN_ALPHA",
    "eta0": "TRAIN_ETA0",
    "power_t": "TRAIN_POWER_T",
    "max_weight": "TRAIN_MAX_WEIGHT",
    "checkpoint_dir": "TRAIN_CHECKPOINT_DIR",
    "max_regression": "TRAIN_MAX_REGRESSION",
    "force": "TRAIN_FORCE",
}


@dataclass(frozen=True)
class TrainSettings:
    """What one training run needs to know."""

    data: str
    models: str
    name: str = "default"
    epochs: int = 10
    batch_size: int = 20_000
    seed: int = 0
    resume: bool = False
    patience: int = 2
    tolerance: float = 1e-5
    validation_fraction: float = 0.05
    alpha: float = 1e-6
    eta0: float = 0.01
    power_t: float = 0.25
    max_weight: float = 1e6
    checkpoint_dir: str | None = None
    max_regression: float = 0.001
    force: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse values that cannot work, naming the setting."""
        checks = [
            (bool(self.data), "--data (TRAIN_DATA) is required"),
            (bool(self.models), "--models (TRAIN_MODELS) is required"),
            (_is_plain_name(self.name), f"--name {self.name!r} must be a plain folder name"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.patience >= 1, f"--patience must be at least 1, got {self.patience}"),
            (self.tolerance >= 0, f"--tolerance must be >= 0, got {self.tolerance}"),
            (
                0 < self.validation_fraction < 0.5,
                f"--validation-fraction must be in (0, 0.5), got {self.validation_fraction}",
            ),
            (self.alpha >= 0, f"--alpha must be >= 0, got {self.alpha}"),
            (self.eta0 > 0, f"--eta0 must be > 0, got {self.eta0}"),
            (self.max_weight > 0, f"--max-weight must be > 0, got {self.max_weight}"),
            (
                self.max_regression >= 0,
                f"--max-regression must be >= 0, got {self.max_regression}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise RegpipeError(message)

    def training_params(self) -> dict[str, Any]:
        """The settings that change the fitted model (they key the checkpoint)."""
        doc = asdict(self)
        for key in (
            "data",
            "models",
            "name",
            "resume",
            "checkpoint_dir",
            "max_regression",
            "force",
        ):
            doc.pop(key)
        return doc


def _is_plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and not name.startswith(".")


def env_defaults() -> dict[str, Any]:
    """Every setting's value from the environment, or its default."""
    d = TrainSettings.__dataclass_fields__
    return {
        "data": env_str(ENV_VARS["data"]),
        "models": env_str(ENV_VARS["models"]),
        "name": env_str(ENV_VARS["name"], d["name"].default),
        "epochs": env_int(ENV_VARS["epochs"], d["epochs"].default),
        "batch_size": env_int(ENV_VARS["batch_size"], d["batch_size"].default),
        "seed": env_int(ENV_VARS["seed"], d["seed"].default),
        "resume": env_bool(ENV_VARS["resume"], d["resume"].default),
        "patience": env_int(ENV_VARS["patience"], d["patience"].default),
        "tolerance": env_float(ENV_VARS["tolerance"], d["tolerance"].default),
        "validation_fraction": env_float(
            ENV_VARS["validation_fraction"], d["validation_fraction"].default
        ),
        "alpha": env_float(ENV_VARS["alpha"], d["alpha"].default),
        "eta0": env_float(ENV_VARS["eta0"], d["eta0"].default),
        "power_t": env_float(ENV_VARS["power_t"], d["power_t"].default),
        "max_weight": env_float(ENV_VARS["max_weight"], d["max_weight"].default),
        "checkpoint_dir": env_str(ENV_VARS["checkpoint_dir"]),
        "max_regression": env_float(ENV_VARS["max_regression"], d["max_regression"].default),
        "force": env_bool(ENV_VARS["force"], d["force"].default),
    }
