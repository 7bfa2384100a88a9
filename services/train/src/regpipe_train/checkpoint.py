"""Checkpoints: the SGD state after each completed epoch, written atomically.

``<models>/<name>/.checkpoints/<key>/state.joblib`` (or under ``--checkpoint-dir``), where the
key hashes the dataset fingerprint and the training parameters, so ``--resume`` only ever
continues the same run. The random state is the next epoch number: every random stream is
derived from ``(seed, epoch, partition)``. Checkpoints are read back through the same allowlist
unpickler as model bundles.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import fields
from typing import Any

import joblib

from regpipe_common import publish, storage
from regpipe_common.errors import RegpipeError
from regpipe_common.log import event
from regpipe_common.safe_pickle import UnsafePickleError, safe_joblib_loads

from .fit import FitState
from .settings import TrainSettings

STATE_FILE = "state.joblib"
FORMAT = "regpipe-train-checkpoint/1"

log = logging.getLogger(__name__)


class CheckpointError(RegpipeError):
    """A checkpoint exists but cannot be read."""


def checkpoint_url(settings: TrainSettings, fingerprint: str) -> str:
    """Where this run (dataset + training parameters) keeps its checkpoint."""
    base = settings.checkpoint_dir or storage.join(settings.models, settings.name, ".checkpoints")
    key_doc = {"dataset": fingerprint, "params": settings.training_params()}
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:16]
    return storage.join(base, key)


def save(url: str, state: FitState) -> None:
    doc = {
        "format": FORMAT,
        "state": _fields(state),
        "rng": {
            "next_epoch": state.epochs_done,
            "streams": "default_rng([seed, stream, epoch, part])",
        },
    }
    buffer = io.BytesIO()
    joblib.dump(doc, buffer)
    storage.write_bytes_atomic(storage.join(url, STATE_FILE), buffer.getvalue())
    event(log, "checkpoint written", url=url, epoch=state.epochs_done)


def load(url: str) -> FitState | None:
    """The checkpointed state, or None when there is no checkpoint."""
    state_url = storage.join(url, STATE_FILE)
    try:
        payload = storage.read_bytes(state_url)
    except FileNotFoundError:
        return None
    try:
        doc = safe_joblib_loads(payload)
    except UnsafePickleError as exc:
        raise CheckpointError(f"{state_url}: refused to unpickle: {exc}") from None
    except Exception as exc:
        raise CheckpointError(f"{state_url}: cannot be read ({exc}); delete it") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{state_url} is not a {FORMAT} checkpoint; delete it")
    return FitState(**doc["state"])


def remove(url: str) -> None:
    publish.remove_folder(url)


def _fields(state: FitState) -> dict[str, Any]:
    """The dataclass fields without deep-copying the estimators (``asdict`` would)."""
    return {f.name: getattr(state, f.name) for f in fields(state)}
