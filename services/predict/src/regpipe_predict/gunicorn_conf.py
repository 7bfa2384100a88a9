"""gunicorn configuration, from :mod:`regpipe_predict.settings`.

``regpipe-predict`` uses it; so can ``gunicorn -c python:regpipe_predict.gunicorn_conf
'regpipe_predict.app:create_app()'``.

gevent workers (:mod:`.worker`: a greenlet per connection, so slow clients hold nothing;
``WORKER_CLASS=gthread`` for gunicorn's threads), worker heartbeat files in ``/dev/shm`` (works
on a read-only root filesystem), no control socket, graceful SIGTERM: listeners close at once,
in-flight requests get ``GRACEFUL_TIMEOUT`` seconds to finish, kept-alive connections are closed
cleanly (``Connection: close``).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from regpipe_common.log import configure_logging, gunicorn_logconfig

from .settings import WORKER_CLASSES, from_env


def _multiproc_dir() -> str:
    """``PROMETHEUS_MULTIPROC_DIR``, or a fresh temporary folder, set before any worker forks."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="regpipe-predict-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    os.makedirs(folder, exist_ok=True)
    return folder


_settings = from_env()
_multiproc_dir()

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = WORKER_CLASSES[_settings.worker_class]
worker_connections = _settings.worker_connections
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
control_socket_disable = True
preload_app = False  # each worker loads and polls its own model after the fork
accesslog = "-" if _settings.access_log else None
errorlog = "-"
# LOG_FORMAT=json: gunicorn's own lines (master and workers) are JSON records too.
configure_logging()
logconfig_dict = gunicorn_logconfig(_settings.access_log)
proc_name = "regpipe-predict"
# Request line and header limits stay at gunicorn's defaults; the body limit is the app's.


def on_starting(server: Any) -> None:
    """Remove old Prometheus metric files (``*.db``): stale ones would add old counts."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):  # only prometheus_client's own files, whatever else is there
            os.remove(os.path.join(folder, name))


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (prometheus_client multiprocess mode)."""
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
