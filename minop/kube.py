"""minop's client of the API server: the verbs (get, paginated list, create, replace,
patches, server-side apply, delete) on the request loop of ``minop.rest``, and the
leader election's client of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from minop import kubeconfig
from minop.apierrors import Gone, NotFound
from minop.objects import Obj
from minop.resource import Kind
from minop.rest import RestClient

log = logging.getLogger("minop.kube")

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class Kube(RestClient):
    """A thread-safe client for one cluster."""

    def for_leader_election(self) -> Kube:
        """A client of its own (connections, no rate limit, User-Agent suffix), as
        controller-runtime gives leader election: a burst of other traffic can never
        delay a renewal past the renew deadline."""
        return Kube(
            self.config_doc,
            agent=f"{self.agent} leader-election",
            metrics=self.metrics,
            pool_size=2,
            watch_pool_size=1,
        )

    @classmethod
    def from_env(
        cls, kubeconfig_path: str | None = None, context: str | None = None, **kw: Any
    ) -> Kube:
        return cls(kubeconfig.load(kubeconfig_path, context), **kw)

    # -- verbs ----------------------------------------------------------------

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        return self.request("GET", self.path(kind, namespace, name))

    def get_or_none(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.get(kind, name, namespace)
        except NotFound:
            return None

    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        shard_selector: str | None = None,
        page_size: int = 500,
        progress: Callable[[], None] | None = None,
        transform: Callable[[Obj], Obj] | None = None,
    ) -> tuple[list[Obj], str]:
        """All objects, fetched in pages; returns them with the list's resourceVersion.

        ``transform`` runs on each object as its page arrives, so what it drops (e.g.
        managedFields) is never held for the whole list: Python keeps the memory a
        peak took. ``progress`` runs after every page (a long list is not a stalled one). When
        the continue token expires mid-way the rest cannot be consistent with what
        came before: like client-go's pager, list everything again in one request
        instead of paging from scratch (which could expire again, forever)."""
        params: dict[str, Any] = {"limit": page_size}
        if label_selector:
            params["labelSelector"] = label_selector
        if shard_selector:
            params["shardSelector"] = shard_selector
        items: list[Obj] = []
        while True:
            try:
                page = self.request("GET", self.path(kind, namespace), params=params)
            except Gone:
                if "continue" not in params:
                    raise
                log.warning("listing %s: continue token expired; listing unpaginated", kind)
                params = {k: v for k, v in params.items() if k not in ("continue", "limit")}
                items = []
                continue
            if progress is not None:
                progress()
            for item in page.get("items") or []:
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item if transform is None else transform(item))
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                return items, meta.get("resourceVersion", "")
            params["continue"] = meta["continue"]

    def create(
        self, kind: Kind, body: Obj, namespace: str | None = None, *, fenced: bool = True
    ) -> Obj:
        ns = namespace or body.get("metadata", {}).get("namespace")
        return self.request("POST", self.path(kind, ns), body=body, fenced=fenced)

    def replace(self, kind: Kind, body: Obj, *, fenced: bool = True) -> Obj:
        """PUT the whole object; its resourceVersion makes a concurrent change a Conflict."""
        meta = body["metadata"]
        path = self.path(kind, meta.get("namespace"), meta["name"])
        return self.request("PUT", path, body=body, fenced=fenced)

    def patch(
        self,
        kind: Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Obj:
        return self.request(
            "PATCH",
            self.path(kind, namespace, name, subresource),
            body=patch,
            content_type=PATCH_TYPES[patch_type],
            params=params,
        )

    def apply(
        self,
        kind: Kind,
        body: Obj,
        *,
        field_manager: str = "minop",
        force: bool = True,
        subresource: str | None = None,
    ) -> Obj:
        """Server-side apply ``body`` (JSON is valid YAML) as ``field_manager``."""
        meta = body["metadata"]
        return self.patch(
            kind,
            meta["name"],
            body,
            meta.get("namespace"),
            patch_type="apply",
            subresource=subresource,
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
        )

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        missing_ok: bool = True,
    ) -> Obj | None:
        try:
            return self.request(
                "DELETE",
                self.path(kind, namespace, name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
            )
        except NotFound:
            if missing_ok:
                return None
            raise

    def version(self) -> Obj:
        return self.request("GET", "/version")
