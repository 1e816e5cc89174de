"""The webhook server's life in the operator: which certificate it serves, kept fresh.

Three certificate modes (``--webhook-cert-mode``):

- ``self-managed``: every replica reads the Secret ``--webhook-secret``; whichever
  finds it missing or due renews it (a write conflict means another replica did:
  its result is used), writes the CA bundle into the webhook configurations and the
  CRDs' conversion sections, then serves the new pair. Checked every
  ``CHECK_INTERVAL`` and at start.
- ``cert-manager`` and ``olm``: the certificate is issued by them and mounted in
  ``--webhook-cert-dir`` (``tls.crt``, ``tls.key``); its CA bundle is injected by
  them. minop reloads the files when they change.

Writes here bypass the leader's write fence: every replica serves the webhook and a
standby must be able to start it.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minop import kinds
from minop.apierrors import Conflict
from minop.kube import Kube
from minop.metrics import Metrics
from minop.plugin.manager import PluginManager
from minop.resource import Kind
from minop.serve import parse_addr
from minop.settings import Settings
from minop.webhook import certs
from minop.webhook.review import Reviews
from minop.webhook.server import WebhookServer

log = logging.getLogger("minop.webhook")

VALIDATING = Kind(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)
MUTATING = Kind(
    "admissionregistration.k8s.io",
    "v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
    namespaced=False,
)
CHECK_INTERVAL = 3600.0
FILES_INTERVAL = 10.0  # mounted Secrets change within about a minute


def needed(plugins: PluginManager) -> bool:
    """Whether any started resource has a webhook or serves several versions."""
    return any(r.validating or r.mutating or len(r.versions) > 1 for _, r in plugins.resources())


def conversion_crds(plugins: PluginManager) -> list[str]:
    return [
        r.crd["metadata"]["name"] for _, r in plugins.resources() if r.crd and len(r.versions) > 1
    ]


class SelfManaged:
    """Keeps the Secret's certificate fresh and every caBundle on it."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        settings: Settings,
        crds: list[str],
        load: Callable[[str, str], None],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.kube, self.namespace, self.crds = kube, namespace, crds
        self.load, self.now = load, now
        self.secret = settings.webhook_secret
        self.cn = settings.webhook_service[:60]  # a CN holds 64 at most: the SANs name it
        self.config = settings.webhook_config
        service = settings.webhook_service
        self.hosts = (
            *settings.webhook_hosts,
            service,
            f"{service}.{namespace}",
            f"{service}.{namespace}.svc",
        )
        self._loaded: certs.Material | None = None

    def sync(self) -> None:
        """Renew if due, publish the CA bundle, then serve: never the other way round,
        or the API server would meet a certificate it cannot yet trust."""
        body = self.kube.get_or_none(kinds.SECRET, self.secret, self.namespace)
        current = certs.Material.from_secret(body.get("data") if body else None)
        material = certs.renew(current, self.cn, self.hosts, self.now())
        if material is not None:
            try:
                self._write(body, material)
                log.info("webhook certificate renewed in Secret %s", self.secret)
            except Conflict:  # another replica renewed first: serve what it wrote
                body = self.kube.get(kinds.SECRET, self.secret, self.namespace)
                material = certs.Material.from_secret(body.get("data"))
        material = material or current
        if material is None:
            raise certs.CertError(f"Secret {self.secret} holds no usable certificate")
        self.inject(material.ca_bundle)
        if material != self._loaded:
            self.load(material.tls_crt, material.tls_key)
            self._loaded = material

    def _write(self, body: dict[str, Any] | None, material: certs.Material) -> None:
        if body is None:
            new = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": self.secret, "namespace": self.namespace},
                "data": material.secret_data(),
            }
            self.kube.create(kinds.SECRET, new, self.namespace, fenced=False)
        else:
            self.kube.replace(kinds.SECRET, {**body, "data": material.secret_data()}, fenced=False)

    def inject(self, bundle: str) -> None:
        """Write ``bundle`` into every clientConfig that reaches this webhook."""
        ca = base64.b64encode(bundle.encode()).decode()
        for kind in (VALIDATING, MUTATING):
            config = self.kube.get_or_none(kind, self.config)
            if config is None:
                continue
            hooks = config.get("webhooks") or []
            if all(h.get("clientConfig", {}).get("caBundle") == ca for h in hooks):
                continue
            for h in hooks:
                h.setdefault("clientConfig", {})["caBundle"] = ca
            self.kube.replace(kind, config, fenced=False)
        for name in self.crds:
            crd = self.kube.get_or_none(kinds.CRD, name)
            conversion = (crd or {}).get("spec", {}).get("conversion") or {}
            client = (conversion.get("webhook") or {}).get("clientConfig")
            if crd is None or client is None or client.get("caBundle") == ca:
                continue
            client["caBundle"] = ca  # a PUT, which can pass the write fence
            self.kube.replace(kinds.CRD, crd, fenced=False)


class Mounted:
    """A certificate cert-manager or OLM mounts as files: reloaded when they change."""

    def __init__(self, directory: str, load: Callable[[str, str], None]) -> None:
        self.dir = Path(directory)
        self.load = load
        self._seen: tuple[str, str] | None = None

    def sync(self) -> None:
        try:
            pair = ((self.dir / "tls.crt").read_text(), (self.dir / "tls.key").read_text())
        except OSError as e:
            raise certs.CertError(f"not mounted in {self.dir}: {e}") from e
        if pair != self._seen:
            self.load(*pair)
            self._seen = pair


class Webhooks:
    """The server and its certificate source, started on every replica."""

    def __init__(
        self,
        settings: Settings,
        plugins: PluginManager,
        kube: Kube,
        metrics: Metrics,
        namespace: str,
    ) -> None:
        addr = parse_addr(settings.webhook_addr)
        assert addr is not None  # the manager builds this only when enabled
        self.server = WebhookServer(addr, Reviews(plugins), metrics, settings.webhook_max_in_flight)
        self.source: SelfManaged | Mounted
        if settings.webhook_cert_mode == "self-managed":
            self.source = SelfManaged(
                kube, namespace, settings, conversion_crds(plugins), self.server.load
            )
            self.interval = CHECK_INTERVAL
        else:
            self.source = Mounted(settings.webhook_cert_dir, self.server.load)
            self.interval = FILES_INTERVAL
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="webhook-certs")
        self.error = ""

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> None:
        self.server.start()
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                self.source.sync()
                self.error = ""
            except Exception as e:  # retried at the next check; /readyz says why meanwhile
                self.error = f"webhook certificate: {e}"
                log.exception("webhook certificate check failed")
            if self._stop.wait(self.interval if not self.error else 5.0):
                return

    def ready(self) -> tuple[bool, str]:
        ok, why = self.server.ready()
        if not ok:
            return False, self.error or why
        return True, ""

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
