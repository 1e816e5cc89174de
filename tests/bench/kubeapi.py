"""A small synchronous Kubernetes client for the harness and the floor operator.

Plain ``requests`` on a pykube-ng session (pykube only reads the kubeconfig and
sets up TLS): no caching, no retries beyond what a caller asks for, no rate limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pykube
import requests
from pykube.http import KubernetesHTTPAdapter

Obj = dict[str, Any]

MERGE = "application/merge-patch+json"

GROUP, VERSION, PLURAL = "cache.minop.dev", "v1alpha1", "memcacheds"
CR_PATH = f"/apis/{GROUP}/{VERSION}"
DEPLOYMENTS = "/apis/apps/v1"
CORE = "/api/v1"


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class Api:
    """One cluster, one User-Agent, a connection pool large enough for a burst."""

    def __init__(self, kubeconfig: str, agent: str, pool: int = 64) -> None:
        config = pykube.KubeConfig.from_file(kubeconfig)
        self.server = config.cluster["server"].rstrip("/")
        self.session = self._session(config, agent, pool)
        self.watch_session = self._session(config, agent, 16)

    @staticmethod
    def _session(config: pykube.KubeConfig, agent: str, pool: int) -> requests.Session:
        # pykube's adapter carries the TLS client certificate; requests pools 10 by default.
        adapter = KubernetesHTTPAdapter(config, pool_connections=4, pool_maxsize=pool)
        session: requests.Session = pykube.HTTPClient(config, http_adapter=adapter).session
        session.headers["User-Agent"] = agent
        return session

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        resp = self.session.request(
            method, self.server + path, data=data, params=params, headers=headers, timeout=60
        )
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.text[:300])
        return resp.json() if resp.content else {}

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Obj:
        return self.request("GET", path, params=params)

    def create(self, path: str, body: Obj) -> Obj:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body, content_type=MERGE)

    def delete(self, path: str) -> Obj:
        return self.request("DELETE", path)

    def watch(
        self, path: str, resource_version: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[tuple[str, Obj]]:
        """Events of one watch request until the server ends it (about 5 minutes)."""
        query = {
            **(params or {}),
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        with self.watch_session.get(
            self.server + path, params=query, stream=True, timeout=(30, 330)
        ) as resp:
            if resp.status_code >= 400:
                raise ApiError(resp.status_code, resp.text[:300])
            for line in resp.iter_lines(chunk_size=None):
                if line:
                    event = json.loads(line)
                    if event["type"] == "ERROR":  # e.g. 410 Gone: the caller lists again
                        status = event["object"]
                        raise ApiError(int(status.get("code") or 0), str(status.get("message")))
                    yield event["type"], event["object"]


def crs(namespace: str, name: str = "") -> str:
    return f"{CR_PATH}/namespaces/{namespace}/{PLURAL}" + (f"/{name}" if name else "")


def deployments(namespace: str, name: str = "") -> str:
    return f"{DEPLOYMENTS}/namespaces/{namespace}/deployments" + (f"/{name}" if name else "")


def services(namespace: str, name: str = "") -> str:
    return f"{CORE}/namespaces/{namespace}/services" + (f"/{name}" if name else "")
