"""What the adapters rely on in their libraries: each test fails loudly when an upgrade
changes it (the pins in pyproject.toml say which versions were checked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask_smorest import Api
from predict_helpers import gunicorn_body
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from regpipe_predict.adapters import flask as flask_adapter
from regpipe_predict.adapters import prometheus
from regpipe_predict.metrics import value_buckets

# --- prometheus_client -------------------------------------------------------------------------


def test_collector_is_the_exporters_own_request_metric() -> None:
    """The handles found by name are the ones prometheus-flask-exporter records into."""
    app = Flask(__name__)
    registry = CollectorRegistry()
    PrometheusMetrics(app, path=None, registry=registry, group_by="url_rule")
    app.add_url_rule("/x", "x", lambda: "ok")
    duration = prometheus.collector(registry, "flask_http_request_duration_seconds")
    total = prometheus.collector(registry, "flask_http_request_total")
    assert isinstance(duration, Histogram) and isinstance(total, Counter)
    app.test_client().get("/x")
    labels = {"method": "GET", "status": "200"}
    assert registry.get_sample_value("flask_http_request_total", labels) == 1
    total.labels(method="GET", status=200).inc()
    duration.labels(method="GET", status=200, url_rule="/x").observe(0.5)
    assert registry.get_sample_value("flask_http_request_total", labels) == 2
    count = {**labels, "url_rule": "/x"}
    assert registry.get_sample_value("flask_http_request_duration_seconds_count", count) == 2
    with pytest.raises(KeyError):
        prometheus.collector(registry, "no_such_metric")


def samples(hist: Histogram) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value) for s in hist.collect()[0].samples if "_created" not in s.name
    ]


@pytest.mark.parametrize("n", [3, 1000])
def test_observe_many_matches_observe(n: int) -> None:
    values = np.random.default_rng(n).normal(0, 2, n)
    values[:2] = [0.0, 0.25]  # exactly on bucket bounds
    buckets = value_buckets({"mean": 0.0, "var": 1.0})
    one = Histogram("a_one", "x", buckets=buckets, registry=None)
    many = Histogram("a_many", "x", buckets=buckets, registry=None)
    for v in values:
        one.observe(v)
    prometheus.observe_many(many, values)
    assert [s[1:] for s in samples(one)] == [s[1:] for s in samples(many)]


MULTIPROCESS = """
import json, sys
import numpy as np
from prometheus_client import CollectorRegistry, Histogram, multiprocess
from regpipe_predict.adapters.prometheus import observe_many
values = np.arange(-12, 13) / 4  # sums exactly in any order
one = Histogram("m_one", "x", buckets=(-1, 0, 1))
many = Histogram("m_many", "x", buckets=(-1, 0, 1))
for v in values:
    one.observe(v)
observe_many(many, values)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
out = {
    family.name: sorted(
        [s.name.removeprefix(family.name), sorted(s.labels.items()), s.value]
        for s in family.samples
    )
    for family in registry.collect()
}
json.dump(out, sys.stdout)
"""


def test_observe_many_in_multiprocess_mode(tmp_path: Path) -> None:
    """Under gunicorn the bucket values are prometheus_client's multiprocess files."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS], env=env, capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["m_one"] and got["m_one"] == got["m_many"]


# --- Flask and flask-smorest -------------------------------------------------------------------


def test_flask_calls_views_through_ensure_sync() -> None:
    """Overriding ensure_sync is what removes Flask's per-call coroutine check."""
    calls: list[Any] = []

    class Counting(flask_adapter.SyncFlask):
        def ensure_sync(self, func: Any) -> Any:
            calls.append(func)
            return super().ensure_sync(func)

    app = Counting(__name__)
    app.add_url_rule("/x", "x", lambda: "ok")
    assert app.test_client().get("/x").get_data() == b"ok"
    assert calls, "Flask no longer routes view calls through ensure_sync"
    assert flask_adapter.SyncFlask.ensure_sync(app, len) is len


def smorest_app() -> tuple[Flask, Api]:
    app = Flask(__name__)
    app.config.update(
        API_TITLE="t", API_VERSION="1", OPENAPI_VERSION="3.0.3", OPENAPI_URL_PREFIX="/"
    )
    return app, Api(app)


def test_serve_openapi_json_replaces_flask_smorests_view() -> None:
    app, api = smorest_app()
    endpoint = flask_adapter.OPENAPI_JSON_ENDPOINT
    view = app.view_functions[endpoint]
    assert getattr(view, "__func__", None) is Api._openapi_json and view.__self__ is api
    assert app.url_map.bind("").match("/openapi.json")[0] == endpoint
    flask_adapter.serve_openapi_json(app, lambda: {"served": "here"})
    assert app.test_client().get("/openapi.json").get_json() == {"served": "here"}


def test_serve_openapi_json_fails_loudly_without_the_endpoint() -> None:
    app = Flask(__name__)
    with pytest.raises(KeyError, match=r"api-docs\.openapi_json"):
        flask_adapter.serve_openapi_json(app, lambda: {})


# --- gunicorn, gevent (regpipe_predict.worker) -------------------------------------------------


def test_gunicorn_gevent_worker_hooks_the_worker_overrides() -> None:
    """worker.Worker overrides GeventWorker.patch/handle_request/run and calls ``handle`` with
    a listener first; DrainingServer drains with StreamServer's do_read/do_handle/full."""
    import inspect

    from gevent.server import StreamServer
    from gunicorn import sock
    from gunicorn.workers.ggevent import GeventWorker

    from regpipe_predict.worker import DrainingServer, Worker

    for name in ("patch", "handle_request", "run", "handle", "notify"):
        assert callable(getattr(GeventWorker, name, None)), f"GeventWorker.{name} is gone"
    params = list(inspect.signature(GeventWorker.handle_request).parameters)
    assert params == ["self", "listener_name", "req", "sock", "addr"], params
    assert list(inspect.signature(GeventWorker.handle).parameters)[:2] == ["self", "listener"]
    for cls in (sock.TCPSocket, sock.TCP6Socket, sock.UnixSocket):
        assert isinstance(cls.FAMILY, int), f"gunicorn's {cls.__name__} has no FAMILY"
    source = inspect.getsource(sock.BaseSocket.__init__)
    assert "self.sock = " in source, "gunicorn's listener wrapper no longer holds .sock"
    for name in ("do_read", "do_handle", "full", "stop_accepting", "close"):
        assert callable(getattr(StreamServer, name, None)), f"StreamServer.{name} is gone"
    assert issubclass(Worker, GeventWorker) and issubclass(DrainingServer, StreamServer)


# --- gunicorn (regpipe_predict.adapters.gunicorn) ----------------------------------------------


@pytest.mark.parametrize("ahead", [0, 100, 5000])
def test_read_into_receives_a_gunicorn_body_in_place(ahead: int) -> None:
    """read_into takes gunicorn's read-ahead, receives the rest into the buffer, leaves a
    pipelined next request to gunicorn and the body consumed (as Body.read would)."""
    import socket
    import threading

    from regpipe_predict.adapters.gunicorn import read_into

    body = np.random.default_rng(0).bytes(3 << 20)
    after = b"GET /next HTTP/1.1\r\n\r\n"
    server, client = socket.socketpair()
    with server, client:
        sender = threading.Thread(target=client.sendall, args=(body + after,))
        sender.start()
        unreader, stream = gunicorn_body(server, len(body))
        unreader.unread(unreader.sock.recv(ahead) if ahead else b"")  # headers' read-ahead
        buffer = bytearray(len(body))
        assert read_into(stream, memoryview(buffer)) == len(body)
        sender.join()
        assert bytes(buffer) == body
        assert stream.read() == b""  # the body is consumed: gunicorn goes on to the next
        assert unreader.read(len(after)) == after


def test_read_into_refuses_other_streams() -> None:
    """Not a gunicorn body, another length, or a body already partly read: None (the caller
    reads the stream)."""
    import io
    import socket

    from regpipe_predict.adapters.gunicorn import read_into

    assert read_into(io.BytesIO(b"abc"), memoryview(bytearray(3))) is None
    server, client = socket.socketpair()
    with server, client:
        client.sendall(b"abcdef")
        _, stream = gunicorn_body(server, 6)
        assert read_into(stream, memoryview(bytearray(5))) is None
        assert stream.read(2) == b"ab"
        assert read_into(stream, memoryview(bytearray(4))) is None
        assert stream.read() == b"cdef"


def test_read_into_stops_where_the_client_stopped() -> None:
    """A client that closes early: the bytes that came, fewer than asked."""
    import socket

    from regpipe_predict.adapters.gunicorn import read_into

    server, client = socket.socketpair()
    with server:
        client.sendall(b"x" * 10)
        client.close()
        _, stream = gunicorn_body(server, 20)
        buffer = bytearray(20)
        assert read_into(stream, memoryview(buffer)) == 10
        assert buffer[:10] == b"x" * 10
