"""A TCP proxy on loopback that makes a healthy server look slow or stalled.

The fault suite puts it between a client (the collector, the API) and InfluxDB: the client is
configured with ``http://127.0.0.1:{proxy.port}``, the proxy forwards to the real server. It
slows or stops the *network path*, not the server, so the client sees what it sees when a real
InfluxDB is overloaded or a link hangs: answers arrive late, or connections are accepted and
then nothing comes back.

* :meth:`Proxy.set_latency` delays every chunk, in both directions, by that many seconds.
* :meth:`Proxy.stall` holds every connection, old and new: bytes are read and kept, nothing is
  forwarded (the client's request is accepted by the kernel and then hangs, as with a server
  that stopped answering).
* :meth:`Proxy.resume` forwards again, held bytes first, in order.

Threads, one accept loop plus two pumps per connection: the suite's connection counts are small
and a thread per direction keeps the ordering trivially right.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from types import TracebackType

log = logging.getLogger(__name__)

_CHUNK = 65536


class Proxy:
    """Forward loopback connections on :attr:`port` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._latency = 0.0
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.connections = 0
        """Connections accepted so far (a figure for the scenarios)."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="proxy-accept", daemon=True
        )
        self._acceptor.start()

    # --- control -------------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        """Delay every forwarded chunk, in both directions, by ``seconds`` (0 for none)."""
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, not {seconds}")
        self._latency = seconds

    def stall(self) -> None:
        """Accept and hold connections; forward nothing until :meth:`resume`."""
        self._forwarding.clear()

    def resume(self) -> None:
        """Forward again (what was held goes first)."""
        self._forwarding.set()

    @property
    def stalled(self) -> bool:
        return not self._forwarding.is_set()

    def close(self) -> None:
        """Stop accepting and drop every connection (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._forwarding.set()  # wake held pumps so they notice the close
        # shutdown() wakes the accept() blocked in the other thread (close() alone does not).
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- forwarding ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(
                target=self._connect, args=(client,), name="proxy-conn", daemon=True
            ).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError as exc:
            log.debug("proxy: cannot reach %s:%d: %s", *self.target, exc)
            with contextlib.suppress(OSError):
                client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            if self._closed.is_set():
                client.close()
                upstream.close()
                return
            self._sockets.update((client, upstream))
        pumps_left = [2]  # the second pump to end closes both sockets
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(
                target=self._pump,
                args=(source, sink, pumps_left),
                name="proxy-pump",
                daemon=True,
            ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, pumps_left: list[int]) -> None:
        """Copy source to sink until either end closes, honouring latency and stalls."""
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                if self._latency:
                    time.sleep(self._latency)
                self._forwarding.wait()
                if self._closed.is_set():
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # Half-close the other direction so the peer sees EOF; the other pump ends the rest.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                pumps_left[0] -= 1
                last = pumps_left[0] == 0
                if last:
                    self._sockets.difference_update((source, sink))
            if last:
                for sock in (source, sink):
                    with contextlib.suppress(OSError):
                        sock.close()
