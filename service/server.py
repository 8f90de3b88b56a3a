"""Serving the WSGI app with waitress, and stopping it without losing anything.

SIGTERM/SIGINT only set a flag. The main loop then stops accepting, lets the requests in
flight finish and their answers go out (bounded by a grace period), joins the request
threads, and only then closes the connections and waitress's wake-up pipe. Closing those
while request threads still ran let a thread's new database connection reuse a closed
descriptor's number, and the next wake-up byte landed in the SQLite file.
"""
import logging
import signal
import threading
import time

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel

log = logging.getLogger("service.server")
TICK = 0.2   # seconds the loop waits for socket events before it looks at the stop flag


def serve(app, host, port, threads, grace, stopped=(), max_body=1 << 20):
    """Serve `app` until SIGTERM or SIGINT; then drain within `grace` seconds and call each
    of `stopped` (e.g. stop the embedded worker) before returning. The app answers 413 past
    `max_body`; waitress itself stops reading far past it."""
    server = waitress.create_server(app, host=host, port=port, threads=threads, ident="pixstor-mgmt",
                                    clear_untrusted_proxy_headers=False, max_request_body_size=4 * max_body)
    stopping = threading.Event()

    def stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving on http://%s:%s", host, server.effective_port)
    connections = server._map
    deadline = None
    while True:
        wasyncore.loop(timeout=TICK, map=connections, use_poll=True, count=1)
        if not stopping.is_set():
            continue
        if deadline is None:
            log.info("stopping: no new connections; finishing %d in flight", _busy(server))
            deadline = time.monotonic() + grace
            server.accepting = False
            server.del_channel()        # from the loop's own thread, the only one using the map
            server.socket.close()
        _close_idle(connections)
        if not _busy(server) or time.monotonic() > deadline:
            break
    if _busy(server):
        log.warning("grace period of %ss over with %d request(s) unfinished", grace, _busy(server))
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=max(1.0, deadline - time.monotonic()))
    # No request thread is left: now the connections and the wake-up pipe may be closed.
    wasyncore.close_all(connections)
    for step in stopped:
        step()
    log.info("stopped")


def _channels(connections):
    return [c for c in list(connections.values()) if isinstance(c, HTTPChannel)]


def _busy(server):
    dispatcher = server.task_dispatcher
    pending = sum(1 for c in _channels(server._map) if c.requests or c.total_outbufs_len)
    return dispatcher.active_count + len(dispatcher.queue) + pending


def _close_idle(connections):
    """Keep-alive connections with nothing in flight are closed: the client reconnects elsewhere."""
    for channel in _channels(connections):
        if not channel.requests and not channel.total_outbufs_len and channel.request is None:
            channel.handle_close()
