"""The predict service's settings, each declared once: flag, environment variable, default, help.

gunicorn's master and every worker read them from the environment (:func:`from_env`);
``regpipe-predict`` also takes each as a flag, which wins over the variable (it is exported
for the workers). The README's predict settings table is :data:`SCHEMA`'s ``markdown_table()``.
Also read: ``PROMETHEUS_MULTIPROC_DIR`` (workers' metric files; default a new temporary
folder, emptied at start) and ``LOG_LEVEL`` / ``LOG_FORMAT`` (see :mod:`regpipe_common.log`).
"""

from __future__ import annotations

from regpipe_common.settings import Schema, Setting

# WORKER_CLASS values and the gunicorn worker class each one names
WORKER_CLASSES = {"gevent": "regpipe_predict.worker.Worker", "gthread": "gthread"}

SCHEMA = Schema(
    Setting(
        "model_uri",
        str,
        None,
        "model folder (follows LATEST) or one pinned version folder; any fsspec URL",
        "MODEL_URI",
        required=True,
    ),
    Setting("host", str, "0.0.0.0", "address gunicorn binds", "HOST"),
    Setting("port", int, 8080, "port gunicorn binds", "PORT", minimum=0, maximum=65535),
    Setting("workers", int, 2, "gunicorn worker processes", "WEB_CONCURRENCY", minimum=1),
    Setting(
        "worker_class",
        str,
        "gevent",
        "gunicorn workers: a greenlet per connection (gevent) or threads (gthread)",
        "WORKER_CLASS",
        choices=tuple(WORKER_CLASSES),
    ),
    Setting(
        "worker_connections",
        int,
        1000,
        "most open connections per worker (gevent)",
        "WORKER_CONNECTIONS",
        minimum=1,
    ),
    Setting("threads", int, 2, "threads per worker (gthread only)", "THREADS", minimum=1),
    Setting(
        "timeout",
        int,
        60,
        "seconds a worker may stay silent before it is restarted",
        "GUNICORN_TIMEOUT",
        minimum=0,
    ),
    Setting(
        "graceful_timeout",
        int,
        30,
        "seconds in-flight requests get to finish after SIGTERM",
        "GRACEFUL_TIMEOUT",
        minimum=0,
    ),
    Setting(
        "keepalive",
        int,
        5,
        "seconds an idle keep-alive connection stays open",
        "KEEPALIVE",
        minimum=0,
    ),
    Setting(
        "max_content_length",
        int,
        64 * 1024 * 1024,
        "request body limit in bytes (64 MiB); larger is a 413",
        "MAX_CONTENT_LENGTH",
        minimum=1,
    ),
    Setting("max_rows", int, 100_000, "rows per request; more is a 413", "MAX_ROWS", minimum=1),
    Setting(
        "model_poll_interval",
        float,
        10.0,
        "seconds between checks of LATEST (0 turns hot reload off)",
        "MODEL_POLL_INTERVAL",
        minimum=0,
    ),
    Setting(
        "drift_window_rows",
        int,
        10_000,
        "rows in the recent window of the drift gauges",
        "DRIFT_WINDOW_ROWS",
        minimum=1,
    ),
    Setting(
        "drift_update_interval",
        float,
        1.0,
        "seconds between updates of the drift gauges",
        "DRIFT_UPDATE_INTERVAL",
        minimum=0,
    ),
    Setting("access_log", bool, False, "gunicorn access log on stderr", "ACCESS_LOG"),
)

Settings = SCHEMA.dataclass("Settings")


def from_env() -> Settings:
    """The settings from the environment; a missing or bad value is a RegpipeError."""
    return Settings(**SCHEMA.resolve())
