"""Reading an open watch: the chunked body, one JSON event a line."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import suppress
from typing import Any

import requests
from urllib3.exceptions import ReadTimeoutError

from minop.apierrors import ApiError, StreamStalled


class WatchStream:
    """An open watch: iterate for decoded events; ``abort()`` ends it from any thread."""

    def __init__(self, resp: requests.Response) -> None:
        self._resp = resp
        conn = getattr(resp.raw, "connection", None)
        self._sock: socket.socket | None = getattr(conn, "sock", None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self._resp.iter_lines(chunk_size=None):
                if line:
                    yield json.loads(line)
        except requests.ConnectionError as e:
            # requests reports a read timeout mid-body as a ConnectionError
            if e.args and isinstance(e.args[0], ReadTimeoutError):
                raise StreamStalled(str(e)) from e
            raise ApiError(0, "ConnectionError", f"watch stream: {e}") from e
        except (requests.RequestException, OSError, AttributeError) as e:
            raise ApiError(0, "ConnectionError", f"watch stream: {e}") from e

    def abort(self) -> None:
        """Unblock a reader in another thread. Closing the response would wait for
        the lock that reader holds; shutting the socket down wakes it instead."""
        if self._sock is not None:
            with suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
