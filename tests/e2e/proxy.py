"""A TCP proxy that can be paused, to stall the operator's connections on purpose."""

from __future__ import annotations

import select
import socket
import threading


class PausableProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; while paused, bytes are held
    (connections stay open, nothing flows), like a stalled network path."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        self._flowing.wait()
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        peers = {client: server, server: client}
        try:
            while not self._closed:
                ready, _, _ = select.select(list(peers), [], [], 0.2)
                for s in ready:
                    self._flowing.wait()
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            server.close()
