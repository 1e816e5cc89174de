"""A real nginx started with the generated pod's command line exactly as the pod spec
has it, as the pod's numeric user without capabilities, answering its readiness and
liveness probes, stopping as the kubelet stops it, scraped by the metrics sidecar
(mount paths staged as in test_nginx_real.py)."""

import functools
import os
import shutil
import signal
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from minop_nginx import children
from nginx_builds import HTTP2, check, http_probe, needs_nginx

from minop.kit import localpod
from minop.kit.testing import free_port, wait_for

pytestmark = needs_nginx


def uids(pid: int) -> set[str]:
    """Real, effective, saved and filesystem uids of the master and its workers."""
    workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = set()
    for p in (pid, *map(int, workers)):
        status = Path(f"/proc/{p}/status").read_text().splitlines()
        out |= set(next(line for line in status if line.startswith("Uid:")).split()[1:])
    return out


def test_default_pod_serves_its_health_path_as_the_pod_user(serve):
    c, master, *_ = serve({"port": free_port(), "healthcheckPath": "/ready"})
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert http_probe(c, "livenessProbe") == (200, b"ok\n")
    assert uids(master) == {str(children.UID)}


def test_liveness_holds_while_a_proxied_health_path_fails(serve):
    """An upstream outage takes pods out of the Service, never restarts them."""
    port, dead = free_port(), free_port()
    block = f"server {{ listen {port}; location / {{ proxy_pass http://127.0.0.1:{dead}; }} }}"
    c, *_ = serve({"port": port, "config": block}, probe="livenessProbe")
    with pytest.raises(urllib.error.HTTPError) as e:
        http_probe(c, "readinessProbe")
    assert e.value.code == 502


@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare (util-linux)")
def test_the_kubelets_stop_lets_the_requests_in_flight_finish(serve):
    """After the preStop drain the kubelet sends SIGTERM to the container's pid 1: the
    shell in front turns it into SIGQUIT, so nginx stops accepting but finishes what it
    serves (SIGTERM itself is nginx's fast stop, which cuts the request off), and the
    container exits 0."""
    arrived, release = threading.Event(), threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.set()
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"done")

        def log_message(self, *args: object) -> None:
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    block = (
        f"server {{ listen {port};\n"
        '  location = /healthz { default_type text/plain; return 200 "ok\\n"; }\n'
        f"  location / {{ proxy_pass http://127.0.0.1:{upstream.server_address[1]}; }} }}"
    )
    s = serve({"port": port, "config": block}, pid1=True)
    answers: list[tuple[int, bytes]] = []

    def fetch() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/slow", timeout=30) as r:
            answers.append((r.status, r.read()))

    client = threading.Thread(target=fetch)
    client.start()
    try:
        assert arrived.wait(10), "the request never reached the upstream"
        os.kill(localpod.pid1(s.proc), signal.SIGTERM)
        wait_for(lambda: refused(port), 10, "nginx to stop accepting")  # it is stopping
    finally:
        release.set()
        client.join(30)
        upstream.shutdown()
    assert answers == [(200, b"done")]
    assert s.proc.wait(timeout=10) == 0


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_tls_pod_serves_its_health_path_over_https(serve):
    c, *_ = serve({"port": free_port(), "tls": {"secretName": "cert"}})
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert http_probe(c, "livenessProbe") == (200, b"ok\n")


def test_user_server_block_is_served(serve):
    port = free_port()
    block = (
        f"server {{ listen {port}; include fastcgi_params;\n"
        '  location = /healthz { default_type text/plain; return 200 "ok\\n"; }\n'
        "  location / { return 404; } }"
    )
    c, *_ = serve({"port": port, "config": block})
    check({"port": port, "config": block})
    assert http_probe(c, "livenessProbe") == (200, b"ok\n")


def test_http2_pod_on_trixie_serves_http2_and_its_http1_probes(serve, trixie):
    port = free_port()
    spec = {"port": port, "config": HTTP2.replace("PORT", str(port))}
    c, *_ = serve(spec, trixie)
    assert http_probe(c, "livenessProbe") == (200, b"ok\n")  # the kubelet speaks HTTP/1.1
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-w", "%{http_version} %{http_code}",
         "-o", "/dev/null", f"http://127.0.0.1:{port}/healthz"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert out.stdout == "2 200", out


@pytest.fixture(scope="session")
def nginx_exporter() -> Iterator[str]:
    with localpod.exporter_program("nginx-prometheus-exporter") as program:
        yield str(program)


def test_the_metrics_sidecar_scrapes_stub_status_from_inside_the_pod(serve, nginx_exporter):
    """The sidecar's command line as the pod has it, as the pod's user: it reads the
    status server's stub_status (which answers the pod only) and counts a request."""
    metrics = free_port()
    s = serve({"port": free_port(), "metrics": {"enabled": True, "port": metrics}})
    assert http_probe(s.container, "readinessProbe") == (200, b"ok\n")
    sidecar = next(c for c in s.pod["containers"] if c["name"] == "metrics")
    argv = [*localpod.run_as(s.pod, sidecar), nginx_exporter, *localpod.container_argv(sidecar)]
    port = next(p["containerPort"] for p in sidecar["ports"] if p["name"] == "metrics")
    ready = functools.partial(socket.create_connection, ("127.0.0.1", port), 1)
    with localpod.started(argv, lambda: ready().close()):
        series = localpod.scrape(f"http://127.0.0.1:{metrics}/metrics")
    assert series["nginx_up"] == 1
    assert series["nginx_connections_accepted"] >= 2  # the probe's and the exporter's
    assert series["nginx_http_requests_total"] >= 1
