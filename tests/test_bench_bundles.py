"""The serving benchmark's bundles follow the bundle contract (publish_bundle refuses them
otherwise, and ``make bench`` stops after twenty minutes of other tables)."""

from __future__ import annotations

from pathlib import Path

from bench.category_serve_bench import publish_category, publish_numeric
from regpipe_common.bundle import load_bundle


def test_the_category_and_numeric_bench_bundles_publish_and_load(tmp_path: Path) -> None:
    for publish, name in ((publish_category, "cat"), (publish_numeric, "num")):
        version = publish(tmp_path / name)
        loaded = load_bundle(str(tmp_path / name / "bench"))
        assert loaded.metadata["version"] == version
        assert loaded.metadata["feature_stats"] and loaded.metadata["target_stats"]
