"""A dataset of category features only (no numeric feature) trains into a servable bundle."""

from __future__ import annotations

import numpy as np

from regpipe_common.bundle import load_bundle


def test_a_dataset_of_category_features_only_trains(tmp_path, train, hard):
    _, cats, y = hard.category_frame(4_000, {"color": 5, "city": 8})
    hard.write_category_dataset(tmp_path / "data", np.empty((len(y), 0)), cats, y, parts=2)
    run = train(tmp_path / "data", "--epochs", "2")
    assert run.code == 0
    meta = run.metadata
    assert meta["features"] == ["color", "city"] and meta["feature_stats"] == {}
    model = load_bundle(str(run.model_dir)).model
    rows = np.array([["color_0", "city_1"], ["unseen", "city_2"]], dtype=object)
    assert np.isfinite(model.predict(rows)).all()
    again = train(tmp_path / "data", "--epochs", "3")  # gated against the first bundle
    assert again.code == 0
    assert again.metadata["promotion"]["current_r2"] is not None  # compared on the same design
