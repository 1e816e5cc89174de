"""The generated pod on real nginx builds: this machine's (Debian bookworm's 1.22, as
beside the operator and in minop/nginx:1.22) and Debian trixie's 1.26 (minop/nginx:1.26,
kind's newer operand, from ``hack/debian-root.sh``, run with its own libraries).

`nginx -t` as the operator runs it, the pod's own `nginx -t` (its init container)
on each build, so a version difference is found here, and a real nginx started with
the container's command line exactly as the pod spec has it, as the pod's numeric
user without capabilities, answering its readiness and liveness probes.

Only mount paths move: every volumeMount's mountPath becomes <tmp>/<mountPath>
(``localpod.stage_mounts``), in the files and in the command line alike; the
ConfigMap holds the generated files, the TLS Secret a throwaway pair, the
emptyDirs are empty directories owned by the pod's user. The files the image
ships beside nginx.conf (mime.types, ...) come from the build's own /etc/nginx.
"""

import contextlib
import functools
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest
from minop_nginx import children, config

from minop.kit import localpod
from minop.kit import workloads as wl
from minop.kit.testing import free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (make unit)")
pytestmark = needs_nginx
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


@pytest.fixture(scope="session")
def trixie() -> Iterator[Nginx]:
    if os.geteuid() != 0:
        pytest.skip("trixie's nginx needs root (debootstrap): run make unit as root")
    with localpod.debian_program("trixie", "nginx", "nginx") as (program, root):
        yield Nginx(str(program), root / "etc/nginx")


@pytest.fixture(params=["bookworm", "trixie"])
def nginx(request: pytest.FixtureRequest) -> Nginx:
    build = BOOKWORM if request.param == "bookworm" else request.getfixturevalue("trixie")
    assert build.version().startswith({"bookworm": "1.22.", "trixie": "1.26."}[request.param])
    return build


def pod_of(spec: dict) -> dict:
    d = children.deployment(wl.Instance("web", "ns", spec, {}, {}, "img"), config.files(spec), "h")
    return d["spec"]["template"]["spec"]


def check(spec: dict) -> None:
    config.check(pod_of(spec), config.files(spec))


def pod_check(spec: dict, nginx: Nginx = BOOKWORM) -> tuple[int, str]:
    """The pod's init container (its own `nginx -t`) run as the pod runs it, as the pod's
    user, on ``nginx``: (exit code, nginx's first error as Degraded shows it)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("running as the pod's user needs root and setpriv")
    pod = pod_of(spec)
    [init] = pod["initContainers"]
    with tempfile.TemporaryDirectory(prefix="minop-nginx-test-") as tmp:
        # a TLS Secret with every key the configuration names (ca.crt, ...)
        tls = config.tls_stand_ins(config.files(spec))
        volumes = {config.CONFIG_VOLUME: config.files(spec), config.TLS_VOLUME: tls}
        paths = localpod.stage_mounts(pod, init, Path(tmp), volumes)
        config.image_files(Path(localpod.relocate(config.CONF, paths)).parent, nginx.etc)
        argv = localpod.container_argv(init, paths)
        r = subprocess.run(
            [*localpod.run_as(pod, init), nginx.binary, *argv[1:], "-p", f"{tmp}/"],
            stdout=subprocess.DEVNULL,  # reopened as the pod's user (access_log /dev/stdout)
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
        back = {v: k for k, v in paths.items()}
        return r.returncode, config.first_error(localpod.relocate(r.stderr, back))


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"port": 8443, "tls": {"secretName": "x"}},
        {"config": "server { listen 8080; location / { include fastcgi_params; "
                   "fastcgi_pass 127.0.0.1:9000; } }"},
        # upstream names resolve in the pod's namespace, not the operator's
        {"config": "server { listen 8080; location / { proxy_pass http://backend.invalid; } }"},
        # mTLS: ca.crt is another key of the TLS Secret
        {"config": "server { listen 8443 ssl; ssl_certificate /etc/nginx/tls/tls.crt; "
                   "ssl_certificate_key /etc/nginx/tls/tls.key; "
                   "ssl_client_certificate /etc/nginx/tls/ca.crt; ssl_verify_client on; }",
         "tls": {"secretName": "x"}, "port": 8443},
        # the main and events contexts, worker_processes from the CPU limit
        {"workerConnections": 4096, "mainSnippet": "worker_rlimit_nofile 8192;\nenv TZ;",
         "eventsSnippet": "multi_accept on;", "resources": {"limits": {"cpu": "1500m"}}},
    ],
    ids=["default", "tls", "relative-include", "unresolvable-upstream", "mtls", "contexts"],
)  # fmt: skip
def test_valid_configurations_pass_nginx_t(spec, nginx):
    check(spec)
    if "backend.invalid" not in spec.get("config", ""):  # resolves nowhere, nor in a pod
        assert pod_check(spec, nginx) == (0, "")  # the pod's own check too, on either build


@pytest.mark.parametrize(
    ("block", "refused"),
    [
        ("http2 on;", 'unknown directive "http2"'),  # nginx >= 1.25.1
        ("listen 8443 quic;", 'invalid parameter "quic"'),  # nginx >= 1.25.0
        ("bogus_directive on;", 'unknown directive "bogus_directive"'),  # another module
        ("ssl_protocols TLSv9;", 'invalid value "TLSv9"'),
        ("return 200 $not_a_variable_here;", 'unknown "not_a_variable_here" variable'),
        # port 80 may be privileged or taken here, never in a new pod (containerd lets
        # pods bind low ports)
        ("listen 80;", "bind() to 0.0.0.0:80 failed"),
    ],
)
def test_what_another_nginx_may_judge_differently_is_left_to_the_pod(block, refused):
    """The operator never refuses what the pod's nginx may accept: its own nginx is
    another version. The pod's init container decides; this nginx there refuses."""
    spec = {"config": f"server {{ listen 8080; {block} }}"}
    check(spec)
    code, message = pod_check(spec)
    assert code != 0 and message.startswith(refused), message


def test_http2_is_a_version_difference_the_pods_own_check_decides(trixie):
    """The operator's nginx (1.22) cannot judge `http2 on;` and does not refuse it; the
    pod's check refuses it on 1.22 and passes it on 1.26."""
    spec = {"config": HTTP2.replace("PORT", "8080")}
    check(spec)
    code, message = pod_check(spec, BOOKWORM)
    assert code != 0 and message.startswith('unknown directive "http2" in /etc/nginx/minop/')
    assert pod_check(spec, trixie) == (0, "")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"config": "server { listen 8080;"}, 'unexpected end of file, expecting "}"'),
        ({"config": "server { listen 8080; } }"}, 'unexpected "}" in /etc/nginx/minop/'),
        (
            {"config": "server { listen 8080; include /etc/nginx/missing.conf; }"},
            'open() "/etc/nginx/missing.conf" failed (2: No such file or directory)',
        ),
    ],
)  # fmt: skip
def test_invalid_configuration_fails_with_nginx_own_message_in_pod_paths(spec, message, nginx):
    with pytest.raises(config.InvalidConfig) as e:
        check(spec)
    assert str(e.value).startswith(message), e.value
    assert "minop-nginx-" not in str(e.value)  # no scratch path of the operator leaks
    # what the operator refuses, the pod's nginx refuses too, on either build
    code, pod_message = pod_check(spec, nginx)
    assert code != 0 and pod_message == str(e.value)


class Served(NamedTuple):
    container: dict
    pid: int  # the master's (with pid1: unshare's)
    pod: dict
    paths: dict[str, str]  # mount path -> local path (localpod.stage_mounts)
    proc: subprocess.Popen


@pytest.fixture
def serve():
    """Start the pod's nginx for a spec, wait until ``probe`` passes. Stopped after."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def run(
        spec: dict,
        nginx: Nginx = BOOKWORM,
        probe: str = "readinessProbe",
        volumes: dict[str, dict[str, str]] | None = None,
        pid1: bool = False,
    ) -> Served:
        spec = {"statusPort": free_port(), **spec}
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            pytest.skip("running as the pod's user needs root and setpriv")
        pod = pod_of(spec)
        c = pod["containers"][0]
        root = Path(tempfile.mkdtemp(prefix="minop-nginx-test-"))  # pytest's are 0700
        files = {config.CONFIG_VOLUME: config.files(spec), config.TLS_VOLUME: config.dummy_tls()}
        paths = localpod.stage_mounts(pod, c, root, {**files, **(volumes or {})})
        config.image_files(Path(localpod.relocate(config.CONF, paths)).parent, nginx.etc)
        # The runtime gives the process stdio it may reopen (access_log /dev/stdout).
        out = root / "stdout"
        out.touch()
        os.chown(out, pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"])
        command = localpod.container_argv(c, paths)
        assert command[:5] == ["/bin/sh", "-c", command[2], "nginx", "nginx"]  # the stop shell
        if pid1:  # the whole command as pid 1 of its own pid namespace, as in the pod
            ours = [nginx.binary if arg == "nginx" else arg for arg in command]
            argv = ["unshare", "--pid", "--fork", "--mount-proc", *localpod.run_as(pod, c), *ours]
        else:  # nginx alone: setpriv execs it, so the process is the master
            argv = [*localpod.run_as(pod, c), nginx.binary, *command[5:]]
        with out.open("w") as stdout:
            proc = subprocess.Popen(
                argv, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
            )
        started.append((proc, root))
        deadline = time.monotonic() + 10
        while True:  # until the probe passes
            try:
                assert http_probe(c, probe) == (200, b"ok\n")
                return Served(c, proc.pid, pod, paths, proc)
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"nginx exited {proc.returncode}: {out.read_text()}")
                assert time.monotonic() < deadline, f"nginx never answered: {out.read_text()}"
                time.sleep(0.05)

    yield run
    for proc, root in started:
        with contextlib.suppress(ProcessLookupError):  # gone already after a graceful stop
            os.killpg(proc.pid, signal.SIGTERM)  # the master and its workers
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def http_probe(container: dict, probe: str) -> tuple[int, bytes]:
    """What the kubelet's httpGet probe does: GET path on the named port, with its
    scheme (HTTPS without verifying the certificate, as the kubelet does)."""
    get = container[probe]["httpGet"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == get["port"])
    url = f"{get['scheme'].lower()}://127.0.0.1:{port}{get['path']}"
    insecure = ssl._create_unverified_context()
    with urllib.request.urlopen(url, timeout=2, context=insecure) as r:
        return r.status, r.read()


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
