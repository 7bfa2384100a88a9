"""The one place that makes a Dask client.

With ``DASK_SCHEDULER_ADDRESS`` set, connect to that scheduler (a ``dask scheduler`` process,
the dask-kubernetes operator's ``DaskJob`` or the ``dask`` Helm chart all set it). Otherwise
start an in-process ``LocalCluster``: ``DASK_N_WORKERS`` workers (default: the CPU count) of
``DASK_THREADS_PER_WORKER`` threads (default 1), as threads of this process unless
``DASK_LOCAL_PROCESSES=true``; its dashboard on ``DASK_DASHBOARD_ADDRESS`` (default: loopback,
a free port; the job charts' ``dask.dashboardPort`` sets ``:PORT`` to reach it from outside).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .log import event
from .settings import dask_scheduler_address, env_bool, env_int, env_str

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


@contextmanager
def dask_client() -> Iterator[Client]:
    """Yield a connected client; a local cluster it started is closed on exit."""
    from distributed import Client, LocalCluster

    address = dask_scheduler_address()
    if address:
        client = Client(address, timeout="30s")
        _log_dashboard(client)
        try:
            yield client
        finally:
            client.close()
        return
    processes = env_bool("DASK_LOCAL_PROCESSES", False)
    # The scheduler and workers always serve HTTP (health, metrics): keep it on loopback, on a
    # free port (``dashboard_address=None`` still binds 0.0.0.0:8787).
    cluster = LocalCluster(
        n_workers=env_int("DASK_N_WORKERS", os.cpu_count() or 1),
        threads_per_worker=env_int("DASK_THREADS_PER_WORKER", 1),
        processes=processes,
        dashboard_address=env_str("DASK_DASHBOARD_ADDRESS", "127.0.0.1:0"),
        worker_dashboard_address="127.0.0.1:0",
        **({"host": "127.0.0.1"} if processes else {}),
    )
    client = Client(cluster)
    _log_dashboard(client, local=True)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _log_dashboard(client: Client, local: bool = False) -> None:
    """Log where the Dask dashboard of this run is (the job's progress, task stream, memory).

    A local cluster's dashboard listens on loopback only, whatever host its link guesses."""
    link = client.dashboard_link
    port = client.scheduler_info().get("services", {}).get("dashboard")
    if local and port:
        link = f"http://127.0.0.1:{port}/status"
    event(log, "dask client", scheduler=client.scheduler.address, dashboard=link)
