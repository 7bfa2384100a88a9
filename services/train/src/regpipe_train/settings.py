"""The train service's settings, each declared once: flag, environment variable, default, help.

The CLI takes each as a flag too; a flag wins over the environment variable, which wins over
the default. The README's train settings table is :data:`SCHEMA`'s ``markdown_table()``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from regpipe_common.settings import SEED_RANGE, Schema, Setting

RESUME_HELP = (
    "continue from the checkpoint of the same run (same dataset and training parameters) "
    "saved after each completed epoch; start over if there is none"
)

SCHEMA = Schema(
    Setting(
        "data",
        str,
        None,
        "prepared dataset folder or URL (preprocess output with manifest.json)",
        "TRAIN_DATA",
        required=True,
    ),
    Setting(
        "models",
        str,
        None,
        "model store folder or URL; the bundle goes to <models>/<name>/<version>/",
        "TRAIN_MODELS",
        required=True,
    ),
    Setting("name", str, "default", "model name (a plain folder name)", "TRAIN_NAME"),
    Setting("epochs", int, 10, "maximum number of epochs", "TRAIN_EPOCHS", minimum=1),
    Setting("batch_size", int, 20_000, "rows per partial_fit call", "TRAIN_BATCH_SIZE", minimum=1),
    Setting(
        "seed",
        int,
        0,
        "seed for validation rows, partition and row order",
        "TRAIN_SEED",
        **SEED_RANGE,
    ),
    Setting("resume", bool, False, RESUME_HELP, "TRAIN_RESUME"),
    Setting(
        "patience",
        int,
        2,
        "stop after this many epochs without validation improvement",
        "TRAIN_PATIENCE",
        minimum=1,
    ),
    Setting(
        "tolerance",
        float,
        1e-5,
        "smallest validation R² gain that counts as an improvement",
        "TRAIN_TOLERANCE",
        minimum=0,
    ),
    Setting(
        "validation_fraction",
        float,
        0.05,
        "fraction of train rows held out for early stopping",
        "TRAIN_VALIDATION_FRACTION",
        minimum=0,
        maximum=0.5,
        exclusive=True,
    ),
    Setting("alpha", float, 1e-6, "L2 penalty of the SGDRegressor", "TRAIN_ALPHA", minimum=0),
    Setting(
        "eta0",
        float,
        0.01,
        "initial learning rate (schedule: eta0 / t^power_t, averaged SGD)",
        "TRAIN_ETA0",
        minimum=0,
        exclusive=True,
    ),
    Setting(
        "power_t",
        float,
        0.25,
        "exponent of the inverse-scaling learning rate",
        "TRAIN_POWER_T",
        minimum=0,
    ),
    Setting(
        "max_weight",
        float,
        1e6,
        "weights beyond max_weight x target std count as divergence",
        "TRAIN_MAX_WEIGHT",
        minimum=0,
        exclusive=True,
    ),
    Setting(
        "checkpoint_dir",
        str,
        None,
        "checkpoint folder or URL (unset: <models>/<name>/.checkpoints)",
        "TRAIN_CHECKPOINT_DIR",
    ),
    Setting(
        "max_regression",
        float,
        0.001,
        "promote only if the test R² is at most this much below the current LATEST model's "
        "on the same test split",
        "TRAIN_MAX_REGRESSION",
        minimum=0,
    ),
    Setting(
        "force",
        bool,
        False,
        "move LATEST to the new version whatever the promotion gate says",
        "TRAIN_FORCE",
    ),
)
# Settings that do not change the fitted model (the others key the checkpoint).
NOT_TRAINING = ("data", "models", "name", "resume", "checkpoint_dir", "max_regression", "force")


class TrainSettings(SCHEMA.dataclass("TrainFields")):  # type: ignore[misc]
    """What one training run needs to know: one field per :data:`SCHEMA` setting."""

    def training_params(self) -> dict[str, Any]:
        """The settings that change the fitted model (they key the checkpoint)."""
        return {k: v for k, v in asdict(self).items() if k not in NOT_TRAINING}


def load(values: dict[str, Any]) -> TrainSettings:
    """:class:`TrainSettings` from resolved values; a name that is no plain folder is refused."""
    name = values["name"]
    if not name or "/" in name or name.startswith("."):
        raise SCHEMA["name"].error(name, "must be a plain folder name")
    return TrainSettings(**values)
