"""regpipe-predict's gunicorn worker: gevent, one greenlet per connection.

Why gevent (issue 8): a gthread worker lends a thread to a connection for as long as its request
takes to arrive, so a few clients sending one byte at a time hold every thread and the service
stops answering. A greenlet waits on its socket without holding anything, up to
``WORKER_CONNECTIONS`` connections per worker, and gunicorn's gevent worker gives the headers of
each request ``KEEPALIVE`` seconds. Requests still compute one at a time per worker, as before
(CPU-bound under the GIL). Threads are not monkey-patched: the model poller stays a real thread,
and so does the event-loop thread of fsspec's async filesystems (s3fs), which refuses to run
inside a patched thread ("Calling sync() from within a running loop").

Two changes to gunicorn's ``GeventWorker``. Each request is followed by a yield, so that under
load every connection gets its turn. The SIGTERM drain lets no client see a reset: the listener
accepts the connections already queued on it before it closes (closing it would reset them;
later ones are refused), responses during the drain carry ``Connection: close`` (gunicorn's
async worker), and idle kept-alive connections close after ``KEEPALIVE`` seconds without a
request, within ``GRACEFUL_TIMEOUT``.
"""

from __future__ import annotations

import socket
import time
from functools import partial
from typing import Any

import gevent
from gevent import monkey
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.workers.ggevent import GeventWorker


class DrainingServer(StreamServer):
    """A StreamServer that accepts its listener's queued connections before closing it."""

    def close(self) -> None:
        if not self.closed:
            self.stop_accepting()
            while not self.full() and (client := self.do_read()):  # None once the queue is empty
                self.do_handle(*client)
        super().close()


class ListenerName:
    """What gunicorn's handler asks of a listener (its address), still there once it closed."""

    def __init__(self, listener: socket.socket) -> None:
        self.name = listener.getsockname()

    def getsockname(self) -> Any:
        return self.name


class Worker(GeventWorker):
    """gunicorn's gevent worker with :class:`DrainingServer` listeners (plain HTTP only)."""

    def patch(self) -> None:
        """gunicorn's patch, but real threads (see the module docstring)."""
        monkey.patch_all(thread=False, select=False)
        self.sockets = [
            socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach())
            for s in self.sockets
        ]

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> None:
        """Serve one request, then yield: a client that sends its next request at once would
        otherwise keep the worker while the other connections' requests wait."""
        try:
            super().handle_request(listener_name, req, sock, addr)
        finally:
            gevent.sleep(0)

    def run(self) -> None:
        servers = []
        for listener in self.sockets:
            listener.setblocking(1)
            server = DrainingServer(
                listener,
                handle=partial(self.handle, ListenerName(listener)),
                spawn=Pool(self.worker_connections),
            )
            if self.cfg.workers > 1:
                server.max_accept = 1  # leave the next connection to another worker
            server.start()
            servers.append(server)
        while self.alive:
            self.notify()
            gevent.sleep(1.0)
        for server in servers:
            server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(s.pool.free_count() != s.pool.size for s in servers):
            if time.monotonic() > deadline:
                self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                for server in servers:
                    server.stop(timeout=1)
                return
            self.notify()
            gevent.sleep(0.1)
