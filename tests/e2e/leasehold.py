"""An admission webhook that holds Lease updates: a leader's renewals hang while every
other request it makes flows (which no network fault can do: one TLS path carries both)."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from minop.kit.testing import tls_secret_data

HOLD = 28  # seconds a renewal is held (the API server gives a webhook 30 at most)


class LeaseHold:
    """``install()`` makes the API server send every Lease UPDATE in ``namespace`` here,
    where it waits ``HOLD`` s (or until ``close()``) and is refused; ``remove()`` ends that.
    The API server must reach 127.0.0.1 (the local cluster, not kind)."""

    def __init__(self, kubectl: Callable[..., subprocess.CompletedProcess[str]], namespace: str):
        self.kubectl, self.name = kubectl, f"hold-leases-{namespace}"
        self.namespace = namespace
        self.held = 0
        self._release = threading.Event()
        tls = tls_secret_data("lease-hold")
        self._ca = tls["ca.crt"]
        hold = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hold.held += 1
                hold._release.wait(HOLD)
                answer = {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {
                        "uid": review["request"]["uid"],
                        "allowed": False,
                        "status": {"code": 503, "message": "held by the e2e test"},
                    },
                }
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="minop-hold-") as tmp:
            Path(tmp, "tls.crt").write_text(tls["tls.crt"])
            Path(tmp, "tls.key").write_text(tls["tls.key"])
            context.load_cert_chain(Path(tmp, "tls.crt"), Path(tmp, "tls.key"))
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def install(self) -> None:
        port = self._httpd.server_address[1]
        config = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [
                {
                    "name": "hold.leases.e2e.minop.dev",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/hold",
                        "caBundle": base64.b64encode(self._ca.encode()).decode(),
                    },
                    "rules": [
                        {
                            "apiGroups": ["coordination.k8s.io"],
                            "apiVersions": ["v1"],
                            "operations": ["UPDATE"],
                            "resources": ["leases"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": self.namespace}
                    },
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "timeoutSeconds": 30,
                    "admissionReviewVersions": ["v1"],
                }
            ],
        }
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump(config))

    def remove(self) -> None:
        self.kubectl("delete", "validatingwebhookconfiguration", self.name, "--ignore-not-found")

    def close(self) -> None:
        self.remove()
        self._release.set()
        self._httpd.shutdown()
