"""The run metrics train pushes from its bundle's metadata."""

from __future__ import annotations

import pytest

from regpipe_common.pushgateway import bundle_metrics


def _metadata(promoted: bool, gap: float | None = 1e-4) -> dict:
    return {
        "params": {"epochs_run": 3},
        "optimum": {"train_rows": 1000, "gap_r2": gap},
        "metrics": {"rows": 250, "r2": 0.9},
        "promotion": {"promoted": promoted},
    }


@pytest.mark.parametrize("promoted", [True, False])
def test_promoted_says_whether_the_bundle_became_latest(promoted):
    assert bundle_metrics(_metadata(promoted))["promoted"] == int(promoted)


def test_no_gap_is_pushed_when_the_optimum_was_skipped():
    metrics = bundle_metrics(_metadata(True, gap=None))
    assert "r2_gap_to_optimum" not in metrics and metrics["rows_processed"] == 3000
