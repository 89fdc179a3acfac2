"""gunicorn's threaded worker with a closing connection's linger moved off its event loop.

gunicorn (26 and later) closes a connection that is not kept alive the way RFC 9112 §9.6 asks:
it sends FIN, then reads and discards whatever the client still sends until the client closes,
for up to 2 s, so that unread request bytes do not make the kernel answer with a reset that
truncates the response. The gthread worker does that read on its main thread, the one that
accepts connections and hands requests to the pool: every `Connection: close` answer stalls the
whole process until its client closes, and a client that never closes stalls it for the full
2 s (one request a second per process keeps a web server from accepting anything). Here the
same linger runs on one thread of its own per process, on non-blocking sockets, so the event
loop only sends the FIN and goes on."""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from functools import partial

from gunicorn.workers import gthread

LINGER_SECONDS = 2.0  # as gunicorn's own close
MAX_DRAIN_BYTES = 65536
SAFETY_WAKE_SECONDS = 1.0  # a hand-off whose wake-up byte was dropped waits no longer


class LingeringCloser:
    """Closes sockets after a bounded linger, all of them on one background thread."""

    def __init__(self, *, linger: float = LINGER_SECONDS, max_drain: int = MAX_DRAIN_BYTES):
        self.linger = linger
        self.max_drain = max_drain
        self._handed: queue.SimpleQueue = queue.SimpleQueue()
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, None)
        # sock -> [deadline, bytes drained]
        self._lingering: dict[socket.socket, list] = {}
        self._thread = threading.Thread(target=self._run, name="sluice-closer", daemon=True)
        self._thread.start()

    def close(self, sock: socket.socket) -> None:
        """Send FIN now (the client sees its answer end at once); the rest happens later."""
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            _close_quietly(sock)
            return
        self._handed.put(sock)
        with contextlib.suppress(OSError):  # a full wake-up pipe: the safety wake takes it
            self._wake_writer.send(b"\0")

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            deadlines = [entry[0] for entry in self._lingering.values()]
            wait = min([SAFETY_WAKE_SECONDS, *(max(0.0, d - now) for d in deadlines)])
            for key, _ in self._selector.select(wait):
                if key.data is None:
                    self._take_handed()
                else:
                    self._drain(key.fileobj)
            self._take_handed()
            now = time.monotonic()
            for sock in [s for s, (deadline, _) in self._lingering.items() if deadline <= now]:
                self._finish(sock)

    def _take_handed(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_reader.recv(4096):
                pass
        while True:
            try:
                sock = self._handed.get_nowait()
            except queue.Empty:
                return
            try:
                self._selector.register(sock, selectors.EVENT_READ, sock)
            except (OSError, ValueError):
                _close_quietly(sock)
                continue
            self._lingering[sock] = [time.monotonic() + self.linger, 0]

    def _drain(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        entry = self._lingering[sock]
        entry[1] += len(data)
        if not data or entry[1] >= self.max_drain:
            self._finish(sock)

    def _finish(self, sock: socket.socket) -> None:
        self._lingering.pop(sock, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(sock)
        _close_quietly(sock)


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker; a connection it closes lingers on the closer's thread."""

    def init_process(self) -> None:
        self.closer = LingeringCloser()
        super().init_process()

    def finish_request(self, conn, fs) -> None:
        # finish_request runs on the event loop; the close it may end with must not block it.
        conn.close = partial(self._close_connection, conn)
        super().finish_request(conn, fs)

    def _close_connection(self, conn, graceful: bool = False) -> None:
        if graceful:
            self.closer.close(conn.sock)
        else:
            _close_quietly(conn.sock)
