"""Every environment variable the predict service reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``MODEL_URI`` | (required) | model folder (follows ``LATEST``) or a pinned version; fsspec URL |
| ``HOST`` | ``0.0.0.0`` | address gunicorn binds |
| ``PORT`` | ``8080`` | port gunicorn binds |
| ``WEB_CONCURRENCY`` | ``2`` | gunicorn worker processes |
| ``WORKER_CLASS`` | ``gevent`` | ``gevent`` (a greenlet per connection) or ``gthread`` |
| ``WORKER_CONNECTIONS`` | ``1000`` | most open connections per worker (gevent) |
| ``THREADS`` | ``2`` | threads per worker (``gthread`` only) |
| ``GUNICORN_TIMEOUT`` | ``60`` | seconds a worker may stay silent before it is restarted |
| ``GRACEFUL_TIMEOUT`` | ``30`` | seconds in-flight requests get to finish after SIGTERM |
| ``KEEPALIVE`` | ``5`` | seconds an idle keep-alive connection stays open |
| ``MAX_CONTENT_LENGTH`` | ``67108864`` | request body limit in bytes (64 MiB); larger is a 413 |
| ``MAX_ROWS`` | ``100000`` | rows per request; more is a 413 |
| ``MODEL_POLL_INTERVAL`` | ``10`` | seconds between checks of ``LATEST`` (0 disables hot reload) |
| ``DRIFT_WINDOW_ROWS`` | ``10000`` | rows in the recent window of the drift gauges |
| ``DRIFT_UPDATE_INTERVAL`` | ``1`` | seconds between updates of the drift gauges |
| ``PROMETHEUS_MULTIPROC_DIR`` | a new temp folder | workers' metric files; emptied at start |
| ``ACCESS_LOG`` | ``false`` | gunicorn access log on stderr |
| ``LOG_LEVEL`` / ``LOG_FORMAT`` | ``INFO`` / ``text`` | see :mod:`regpipe_common.log` |
"""

from __future__ import annotations

from dataclasses import dataclass

from regpipe_common.errors import RegpipeError
from regpipe_common.settings import env_bool, env_float, env_int, env_str

# WORKER_CLASS values and the gunicorn worker class each one names
WORKER_CLASSES = {"gevent": "regpipe_predict.worker.Worker", "gthread": "gthread"}


@dataclass(frozen=True)
class Settings:
    model_uri: str
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = 2
    worker_class: str = "gevent"
    worker_connections: int = 1000
    threads: int = 2
    timeout: int = 60
    graceful_timeout: int = 30
    keepalive: int = 5
    max_content_length: int = 64 * 1024 * 1024
    max_rows: int = 100_000
    model_poll_interval: float = 10.0
    drift_window_rows: int = 10_000
    drift_update_interval: float = 1.0
    access_log: bool = False


def from_env() -> Settings:
    """Read the settings; a missing ``MODEL_URI`` or a malformed value is a RegpipeError."""
    model_uri = env_str("MODEL_URI")
    if not model_uri:
        raise RegpipeError("MODEL_URI is not set: give a model folder or a pinned version URL")
    d = Settings(model_uri=model_uri)
    settings = Settings(
        model_uri=model_uri,
        host=env_str("HOST", d.host) or d.host,
        port=env_int("PORT", d.port),
        workers=env_int("WEB_CONCURRENCY", d.workers),
        worker_class=env_str("WORKER_CLASS", d.worker_class) or d.worker_class,
        worker_connections=env_int("WORKER_CONNECTIONS", d.worker_connections),
        threads=env_int("THREADS", d.threads),
        timeout=env_int("GUNICORN_TIMEOUT", d.timeout),
        graceful_timeout=env_int("GRACEFUL_TIMEOUT", d.graceful_timeout),
        keepalive=env_int("KEEPALIVE", d.keepalive),
        max_content_length=env_int("MAX_CONTENT_LENGTH", d.max_content_length),
        max_rows=env_int("MAX_ROWS", d.max_rows),
        model_poll_interval=env_float("MODEL_POLL_INTERVAL", d.model_poll_interval),
        drift_window_rows=env_int("DRIFT_WINDOW_ROWS", d.drift_window_rows),
        drift_update_interval=env_float("DRIFT_UPDATE_INTERVAL", d.drift_update_interval),
        access_log=env_bool("ACCESS_LOG", d.access_log),
    )
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    positive = {
        "WEB_CONCURRENCY": s.workers,
        "WORKER_CONNECTIONS": s.worker_connections,
        "THREADS": s.threads,
        "MAX_CONTENT_LENGTH": s.max_content_length,
        "MAX_ROWS": s.max_rows,
        "DRIFT_WINDOW_ROWS": s.drift_window_rows,
    }
    for name, value in positive.items():
        if value < 1:
            raise RegpipeError(f"{name}={value} must be at least 1")
    if s.worker_class not in WORKER_CLASSES:
        raise RegpipeError(
            f"WORKER_CLASS={s.worker_class} must be one of: {', '.join(WORKER_CLASSES)}"
        )
    if s.model_poll_interval < 0:
        raise RegpipeError(f"MODEL_POLL_INTERVAL={s.model_poll_interval} must not be negative")
