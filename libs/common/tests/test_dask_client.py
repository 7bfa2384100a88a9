"""The one Dask client: its local cluster's dashboard where DASK_DASHBOARD_ADDRESS says."""

from __future__ import annotations

import pytest
import requests
from net import free_port

from regpipe_common.dask_client import dask_client


def test_the_local_dashboard_listens_where_the_chart_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    monkeypatch.setenv("DASK_N_WORKERS", "1")
    monkeypatch.setenv("DASK_DASHBOARD_ADDRESS", f"127.0.0.1:{port}")
    with dask_client() as client:
        assert client.submit(sum, [1, 2]).result() == 3
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).text == "ok"
