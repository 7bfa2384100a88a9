"""``regpipe-models``: list, promote, roll back, prune and verify the versions of a model.

Works on the models root that ``regpipe-train --models`` takes (any fsspec URL). Every change
of ``LATEST`` goes through :func:`regpipe_common.registry.move_latest` (atomic, logged in
``HISTORY.jsonl``); running predict services pick it up by hot reload. Exit codes: 0 done,
2 refused (bad name or version, a bundle that does not verify, nothing to roll back to),
1 unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from . import publish, registry, storage
from .bundle import load_bundle, read_metadata
from .cli import run_command
from .errors import BundleError, RegpipeError
from .settings import env_str
from .version import add_version_flag

PROG = "regpipe-models"


def model_root(models: str, name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise RegpipeError(f"NAME {name!r} must be a plain folder name")
    return storage.join(models, name)


def version_url(root: str, version: str) -> str:
    """The folder of an existing version, or a :class:`RegpipeError` naming it."""
    if "/" in version or version.startswith(".") or version not in registry.version_names(root):
        raise RegpipeError(f"no version {version!r} under {root}")
    return storage.join(root, version)


def list_versions(root: str) -> dict[str, Any]:
    """Every version with its creation time and test R², and the one ``LATEST`` names."""
    latest = registry.read_latest(root)
    rows = []
    for version in registry.version_names(root):
        row: dict[str, Any] = {"version": version, "latest": version == latest}
        try:
            meta = read_metadata(storage.join(root, version))
            row["created_at"] = meta["created_at"]
            row["test_r2"] = meta["metrics"].get("r2")
            row["promotion"] = (meta.get("promotion") or {}).get("reason")
        except BundleError as exc:
            row.update(created_at=None, test_r2=None, error=str(exc))
        rows.append(row)
    return {"latest": latest, "rollback_to": registry.rollback_target(root), "versions": rows}


def print_table(doc: dict[str, Any], out: TextIO) -> None:
    out.write(f"{'VERSION':<30} {'CREATED':<26} {'TEST R2':>10}  LATEST\n")
    for row in doc["versions"]:
        r2 = "-" if row["test_r2"] is None else f"{row['test_r2']:.6f}"
        previous = row["version"] == doc["rollback_to"]
        mark = "*" if row["latest"] else ("previous" if previous else "")
        created = row["created_at"] or "(" + row.get("error", "unreadable")[:40] + ")"
        out.write(f"{row['version']:<30} {created:<26} {r2:>10}  {mark}\n")


def verify(root: str, version: str | None) -> dict[str, Any]:
    """Load a version through the verifying loader (sha256, allowlist, a probe prediction)."""
    version = version or registry.read_latest(root)
    if version is None:
        raise RegpipeError(f"{root} has no LATEST; name a VERSION to verify")
    bundle = load_bundle(version_url(root, version))
    return {
        "version": bundle.version,
        "sha256": bundle.metadata["sha256"],
        "probe_prediction": bundle.probe_prediction,
    }


def promote(root: str, version: str, action: str = "promote") -> dict[str, Any]:
    """Verify ``version``, then point ``LATEST`` at it."""
    verify(root, version)
    return registry.move_latest(root, version, action)


def rollback(root: str) -> dict[str, Any]:
    """Promote the version promoted before the current one."""
    target = registry.rollback_target(root)
    if target is None:
        raise RegpipeError(f"{root}: no earlier promoted version to roll back to")
    if target not in registry.version_names(root):
        raise RegpipeError(f"{root}: the previous version {target} was removed; use promote")
    return promote(root, target, action="rollback")


def prune(root: str, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest versions; never ``LATEST`` nor the rollback target."""
    if keep < 0:
        raise RegpipeError(f"--keep must be >= 0, got {keep}")
    versions = registry.version_names(root)
    protected = {registry.read_latest(root), registry.rollback_target(root)}
    kept = set(versions[len(versions) - keep :] if keep else [])
    removed = [v for v in versions if v not in kept and v not in protected]
    for version in removed:
        publish.remove_folder(storage.join(root, version))
    return removed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="List, promote, roll back, prune and verify model versions. Every change "
        "of LATEST is atomic, logged in HISTORY.jsonl beside it, and picked up by running "
        "predict services. Exit codes: 0 done, 2 refused, 1 unexpected failure.",
    )
    parser.add_argument(
        "--models",
        default=env_str("TRAIN_MODELS"),
        help="models root (local path or fsspec URL, as regpipe-train --models) [env TRAIN_MODELS]",
    )
    add_version_flag(parser, PROG)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="versions, created time, test R², which one LATEST names")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser("promote", help="verify VERSION and point LATEST at it")
    p.add_argument("name")
    p.add_argument("version")
    p = sub.add_parser("rollback", help="point LATEST back at the version promoted before it")
    p.add_argument("name")
    p = sub.add_parser("prune", help="remove old versions (never LATEST nor the one before it)")
    p.add_argument("name")
    p.add_argument("--keep", type=int, required=True, help="how many newest versions to keep")
    p = sub.add_parser("verify", help="sha256, loader allowlist and a probe prediction")
    p.add_argument("name")
    p.add_argument("version", nargs="?", help="default: the version LATEST names")
    return parser


def run(args: argparse.Namespace, out: TextIO) -> None:
    if not args.models:
        raise RegpipeError("--models (TRAIN_MODELS) is required")
    root = model_root(args.models, args.name)
    if args.command == "list":
        doc = list_versions(root)
        if args.json:
            out.write(json.dumps({"name": args.name, **doc}, indent=2) + "\n")
        else:
            print_table(doc, out)
    elif args.command == "verify":
        result = verify(root, args.version)
        out.write(
            f"ok {args.name}/{result['version']}: sha256 {result['sha256']} matches, "
            f"unpickled through the allowlist, probe prediction {result['probe_prediction']:.6g}\n"
        )
    elif args.command == "prune":
        removed = prune(root, args.keep)
        out.write(f"removed {len(removed)} version(s) of {args.name}: {' '.join(removed)}\n")
    else:
        entry = promote(root, args.version) if args.command == "promote" else rollback(root)
        out.write(f"LATEST of {args.name}: {entry['previous']} -> {entry['version']}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 done, 2 refused, 1 unexpected failure."""
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: run(args, sys.stdout) or 0)


if __name__ == "__main__":
    sys.exit(main())
