"""A slow network in front of Redis: a loopback TCP proxy that holds every forwarded chunk.

    with DelayProxy(upstream_port, delay=0.3, jitter=0.2) as proxy:
        url = proxy.url          # redis://127.0.0.1:<proxy port>/0

One thread per direction per connection; each chunk read is forwarded after ``delay`` plus a
uniform ``jitter`` (bounded), so a request/response round trip costs about twice that.  Loopback
only; at most ``max_connections`` clients; ``close()`` stops the listener and every pump.

``cut()`` makes the link fail for real: every open connection is closed and every new one is
accepted and closed at once (the client reads EOF: "Connection closed by server"), until
``restore()``.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from types import TracebackType


class DelayProxy:
    def __init__(
        self, upstream_port: int, *, delay: float, jitter: float = 0.0, max_connections: int = 200
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = delay
        self.jitter = jitter
        self.max_connections = max_connections
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._cut = threading.Event()
        self.chunks = 0
        self.max_hold = 0.0
        self._rng = random.Random(11)
        self._thread = threading.Thread(target=self._accept, name="delay-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._drop_all()

    def cut(self) -> None:
        """Break the link: close every open connection and refuse new ones until :meth:`restore`."""
        self._cut.set()
        self._drop_all()

    def restore(self) -> None:
        self._cut.clear()

    def _drop_all(self) -> None:
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv; the peer reads EOF
                with contextlib.suppress(OSError):
                    s.close()
            self._sockets.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._cut.is_set() or len(self._sockets) >= 2 * self.max_connections:
                    client.close()
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _hold(self) -> float:
        with self._lock:
            self.chunks += 1
            hold = self.delay + self._rng.uniform(0.0, self.jitter)
            self.max_hold = max(self.max_hold, hold)
        return hold

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(self._hold())
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                if src in self._sockets:  # the other pump closes and forgets the pair
                    for s in (src, dst):
                        with contextlib.suppress(OSError):
                            s.close()
                        with contextlib.suppress(ValueError):
                            self._sockets.remove(s)
