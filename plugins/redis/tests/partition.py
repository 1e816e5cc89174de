"""Network partitions between pods of local processes (redis_pods.py), without
touching the processes: every pod's servers bind their own loopback address
(127.0.1.<n>, the source of the connections they open) and announce another
(127.0.2.<n>), where a ``Link`` forwards to them. Pods reach each other only
through the links; a test's clients connect to 127.0.0.1 directly, so they stay
connected to a pod cut off from the others (as clients on its side would).

A partition isolates one pod: a link forwards only between addresses on the
same side. Open connections across it stop flowing without closing (a silently
dead path), new ones connect and then stall.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class Partition:
    """Which pod's address (127.0.1.<n>) is cut off from the others; none at first."""

    def __init__(self) -> None:
        self.isolated: str | None = None
        self.changed = threading.Condition()

    def isolate(self, address: str | None) -> None:
        """Cut the pod at ``address`` off (None: heal)."""
        with self.changed:
            self.isolated = address
            self.changed.notify_all()

    def allows(self, source: str, pod: str) -> bool:
        """A connection from ``source`` to the pod whose address is ``pod`` may flow
        (its own processes, and the test's, talk to it through 127.0.0.1 anyway)."""
        if self.isolated is None:
            return True
        return (source == self.isolated) == (pod == self.isolated)


class Link:
    """Forwards (announced, port) to (real, port), subject to ``partition``."""

    def __init__(self, partition: Partition, announced: str, real: str, port: int) -> None:
        self.partition, self.real, self.port = partition, real, port
        self._listener = socket.create_server((announced, port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"link-{announced}").start()

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, (source, _) = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client, source), daemon=True).start()

    def _pipe(self, client: socket.socket, source: str) -> None:
        try:
            server = socket.create_connection((self.real, self.port), timeout=5)
        except OSError:
            client.close()
            return
        peers = {client: server, server: client}
        try:
            while not self._closed:
                if not self.partition.allows(source, self.real):
                    with self.partition.changed:  # held: nothing read, nothing sent
                        self.partition.changed.wait(0.5)
                    continue
                ready, _, _ = select.select(list(peers), [], [], 0.1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    peers[s].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in peers:
                with contextlib.suppress(OSError):
                    s.close()
