"""gunicorn internals: a large request body of known length read straight into a buffer.

gunicorn's ``Body.read`` passes every received piece through ``LengthReader``,
``SocketUnreader`` and their ``BytesIO`` buffers (several copies and allocations per piece);
for a 16 MB binary tensor that was half of the request's server time. :func:`read_into` takes
the read-ahead gunicorn already holds (``Unreader.take_buffered``), then ``recv_into`` the
caller's buffer from the connection's socket, and tells the ``LengthReader`` how much of the
body is gone, so gunicorn finds the body consumed before the connection's next request.

Internals: ``Body.reader``, ``Body.buf``, ``Body.failed``, ``LengthReader.unreader``,
``LengthReader.length``, ``SocketUnreader.sock``, ``Unreader.take_buffered``, ``unread``.
Any other stream (another server, a chunked body, a body already partly read) gets None and
the caller reads the stream as usual.
"""

from __future__ import annotations

from typing import Any

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader


def read_into(stream: Any, view: memoryview) -> int | None:
    """Read the whole remaining body (``len(view)`` bytes, Content-Length) into ``view``;
    the bytes read (fewer if the client stopped early), or None when ``stream`` is not an
    untouched gunicorn socket body of exactly that length."""
    if type(stream) is not Body:
        return None
    reader = stream.reader
    size = len(view)
    if type(reader) is not LengthReader or reader.length != size or stream.buf.tell():
        return None
    unreader = reader.unreader
    take_buffered = getattr(unreader, "take_buffered", None)  # not in older gunicorn
    if not isinstance(unreader, SocketUnreader) or take_buffered is None:
        return None
    held = take_buffered()
    if len(held) > size:  # a pipelined next request: gunicorn keeps it
        unreader.unread(held[size:])
        held = held[:size]
    done = len(held)
    view[:done] = held
    try:
        while done < size:
            received = unreader.sock.recv_into(view[done:])
            if not received:
                break
            done += received
    except BaseException:
        stream.failed = True  # where the next request starts is unknown: no reuse
        raise
    finally:
        reader.length -= done
    return done
