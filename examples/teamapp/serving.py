"""Serve a WSGI app on loopback: in a thread (tests, demo) or in the foreground (subprocesses).

A subprocess announces its address on stdout as one line, `READY http://127.0.0.1:<port>`, so a
parent can ask for port 0 and learn the real port without racing for a free one.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from werkzeug.serving import BaseWSGIServer, make_server

LOOPBACK = "127.0.0.1"
READY = "READY"


def _server(app, port: int) -> BaseWSGIServer:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    return make_server(LOOPBACK, port, app, threaded=True)


@contextmanager
def serve_in_thread(app, port: int = 0) -> Iterator[str]:
    """Serve `app` from a background thread; yields its base URL and stops it on exit."""
    server = _server(app, port)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"serve-{server.server_port}",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve_forever(app, port: int = 0) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, after printing the READY line."""
    server = _server(app, port)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"{READY} http://{LOOPBACK}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()
