"""The nginx builds the real-program checks run (test_nginx_real*.py): this machine's
(Debian bookworm's 1.22) and Debian trixie's 1.26, and the pod spec they run."""

import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
from minop_nginx import children, config

from minop.kit import workloads as wl

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (make unit)")
# `http2 on;`: nginx 1.25.1 and later
HTTP2 = (
    "server { listen PORT; http2 on;\n"
    '  location = /healthz { default_type text/plain; return 200 "ok\\n"; } }'
)


@dataclass(frozen=True)
class Nginx:
    """One nginx build: the program and the /etc/nginx it ships (mime.types, ...)."""

    binary: str
    etc: Path

    def version(self) -> str:
        out = subprocess.run([self.binary, "-v"], capture_output=True, text=True, check=True)
        return out.stderr.strip().split("/")[-1]


BOOKWORM = Nginx(NGINX, Path("/etc/nginx"))


def pod_of(spec: dict) -> dict:
    d = children.deployment(wl.Instance("web", "ns", spec, {}, {}, "img"), config.files(spec), "h")
    return d["spec"]["template"]["spec"]


def check(spec: dict) -> None:
    """The operator's `nginx -t` of the files a spec generates."""
    config.check(pod_of(spec), config.files(spec))


class Served(NamedTuple):
    container: dict
    pid: int  # the master's (with pid1: unshare's)
    pod: dict
    paths: dict[str, str]  # mount path -> local path (localpod.stage_mounts)
    proc: subprocess.Popen


def http_probe(container: dict, probe: str) -> tuple[int, bytes]:
    """What the kubelet's httpGet probe does: GET path on the named port, with its
    scheme (HTTPS without verifying the certificate, as the kubelet does)."""
    get = container[probe]["httpGet"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == get["port"])
    url = f"{get['scheme'].lower()}://127.0.0.1:{port}{get['path']}"
    insecure = ssl._create_unverified_context()
    with urllib.request.urlopen(url, timeout=2, context=insecure) as r:
        return r.status, r.read()
