"""Training on a real multi-process Dask cluster on 127.0.0.1 (``dask scheduler`` + two
``dask worker`` processes, from the repository's root conftest)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.cluster
def test_train_on_a_real_cluster_gives_the_local_model(
    make_dataset, train, monkeypatch, dask_scheduler_address
):
    from distributed import Client

    data = make_dataset(60_000, parts=6)
    local = train(data, "--epochs", "3", name="local")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_scheduler_address)

    def executed(dask_worker) -> int:  # a local function: pickled by value for the workers
        return dask_worker.state.executed_count

    with Client(dask_scheduler_address) as client:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
        before = client.run(executed)
        remote = train(data, "--epochs", "3", name="remote")
        after = client.run(executed)
    assert remote.code == 0
    # Both worker processes ran some of the partition tasks.
    assert all(after[w] > before[w] for w in workers), (before, after)
    # Same data and seed: the same model, whether 2 threads in-process or 2 worker processes.
    np.testing.assert_array_equal(local.coef(), remote.coef())
    assert local.metadata["metrics"] == remote.metadata["metrics"]
    assert remote.metadata["optimum"]["gap_r2"] < 0.0005
