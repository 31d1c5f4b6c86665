"""A TCP proxy a test can cut and restore: the database server "going away" and coming back.

`cut()` closes the listening socket and every connection through the proxy, so the
gateway sees its pooled connections die and new ones refused, as when the server process
goes down. `blackhole()` drops the connections too, but then leaves new ones unanswered,
as when the server's host is gone or a firewall drops its packets. `restore()` listens
again on the same port. Threads, not asyncio: the test drives it from its own thread
while the gateway runs elsewhere.
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from types import TracebackType

ACCEPT_POLL_S = 0.05  # how soon the accept loop notices a cut
CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = 0
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._blackhole: list[socket.socket] = []
        self.accepted = 0

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(ACCEPT_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting.set()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()
        return self

    def cut(self) -> None:
        """Stop accepting and drop every open connection, both ways."""
        self._accepting.clear()
        if self._accept_thread is not None:
            self._accept_thread.join(5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def blackhole(self) -> None:
        """Drop every connection, then let connection attempts go unanswered.

        A listener whose accept queue is full: Linux drops further SYNs, so a client's
        connect() waits as it would for a host that is not there.
        """
        self.cut()
        hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        hole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hole.bind((self.host, self.port))
        hole.listen(0)
        filler = socket.create_connection((self.host, self.port), timeout=5)
        self._blackhole = [hole, filler]

    def restore(self) -> None:
        """Listen again, on the same port."""
        for sock in self._blackhole:
            sock.close()
        self._blackhole = []
        self.start()

    def stop(self) -> None:
        self.cut()
        for sock in self._blackhole:
            sock.close()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        # One side ended: end the other, so that neither end waits on a half-dead pair.
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._sockets -= {source, sink}
        source.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
