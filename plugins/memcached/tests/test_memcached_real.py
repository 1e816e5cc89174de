"""The generated pod on real memcached builds, this machine's (Debian bookworm's 1.6.18)
and Debian trixie's 1.6.38 (the default image's version; from ``hack/debian-root.sh``,
run with its own libraries): the container's command line exactly as the pod spec has
it, as the pod's numeric user without capabilities, probed the way the pod's probes
probe it. Only the program's path is substituted: the pod mounts no volumes. memcached
listens on every interface, as in the pod, on a free port."""

import os
import resource
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from minop_memcached import children
from minop_memcached.crd import DEFINITION

from minop.kit import localpod
from minop.kit import workloads as wl
from minop.kit.testing import free_port

pytestmark = [
    pytest.mark.skipif(not shutil.which("memcached"), reason="needs memcached (make unit)"),
    pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux)"),
]


def stats(port: int, group: str = "") -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"stats {group}".strip().encode() + b"\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
    return dict(line.split()[1:3] for line in data.decode().splitlines() if line.startswith("STAT"))


def tcp_probe(container: dict, probe: str) -> None:
    """What the kubelet's tcpSocket probe does: a TCP connect to the (named) port."""
    port = container[probe]["tcpSocket"]["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in container["ports"] if p["name"] == port)
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.fixture(scope="session")
def trixie() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("trixie's memcached needs root (debootstrap): run make unit as root")
    with localpod.debian_program("trixie", "memcached", "memcached") as (program, _):
        yield str(program)


@pytest.fixture(params=["bookworm", "trixie"])
def memcached(request: pytest.FixtureRequest) -> str:
    """The memcached program of a build, checked to be the version it stands for."""
    binary = shutil.which("memcached") if request.param == "bookworm" else None
    binary = binary or request.getfixturevalue("trixie")
    version = subprocess.run([binary, "-V"], capture_output=True, text=True, check=True).stdout
    assert version.split()[1] == {"bookworm": "1.6.18", "trixie": "1.6.38"}[request.param]
    return binary


def pod_argv(spec: dict, memcached: str) -> tuple[dict, list[str]]:
    """The pod for ``spec`` and its command line as the pod's user, on ``memcached``."""
    if os.geteuid() != 0:
        pytest.skip("switching to the pod's user needs root")
    inst = wl.Instance("mc", "ns", spec, {}, {}, "memcached")
    pod = children.workload(inst)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    argv = localpod.container_argv(container)
    return pod, [*localpod.run_as(pod, container), memcached, *argv[1:]]


@pytest.fixture
def run_pod(memcached: str):
    procs: list[subprocess.Popen] = []

    def run(spec: dict) -> tuple[dict, dict]:
        pod, argv = pod_argv(spec, memcached)
        container = pod["containers"][0]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        deadline = time.monotonic() + 10
        while True:  # until the readiness probe passes
            try:
                tcp_probe(container, "readinessProbe")
                return pod, container
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"memcached exited {proc.returncode}: {proc.stdout.read()}")
                assert time.monotonic() < deadline, "memcached never listened"
                time.sleep(0.05)

    yield run
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_generated_pod_answers_stats_with_the_configured_limits(run_pod):
    port = free_port()
    pod, container = run_pod({"memoryLimitMB": 96, "maxConnections": 321, "port": port})
    tcp_probe(container, "livenessProbe")
    s = stats(port)
    assert int(s["limit_maxbytes"]) == 96 * 1024 * 1024
    assert int(s["max_connections"]) == 321
    # it runs as the pod's user, not root
    assert int(s["pid"]) > 0
    with open(f"/proc/{s['pid']}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(pod["securityContext"]["runAsUser"])}


def test_item_size_threads_and_verbosity_reach_memcached(run_pod):
    port = free_port()
    run_pod({"port": port, "memoryLimitMB": 8, "maxItemSizeMB": 4, "threads": 3, "verbosity": 1})
    settings = stats(port, "settings")
    assert int(settings["item_size_max"]) == 4 * 1024 * 1024
    assert int(settings["num_threads"]) == 3
    assert int(settings["verbosity"]) == 1


def test_memcached_refuses_an_item_size_over_half_its_memory(memcached):
    """What the CRD's maxItemSizeMB rule refuses (tests/e2e/test_memcached.py): 4 of 8 MiB
    starts above, 4 of 7 does not."""
    _, argv = pod_argv({"memoryLimitMB": 7, "maxItemSizeMB": 4, "port": free_port()}, memcached)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "item size limit higher than 1/2 of memory" in r.stderr


def test_defaults_start(run_pod):
    port = free_port()
    run_pod({"port": port})
    s = stats(port)
    assert int(s["limit_maxbytes"]) == 64 * 1024 * 1024 and int(s["max_connections"]) == 1024


def test_the_largest_connection_limit_starts(run_pod):
    # memcached sets its open-files limit to -c; unprivileged, it cannot raise the hard
    # limit, which containerd gives containers at 524288 (2.x) or 1048576 (1.x).
    most = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    most = most["properties"]["maxConnections"]["maximum"]
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < most:
        pytest.skip(f"this machine's hard open-files limit is below {most}")
    port = free_port()
    run_pod({"port": port, "maxConnections": most})
    assert int(stats(port)["max_connections"]) == most


@pytest.fixture(scope="session")
def memcached_exporter() -> Iterator[str]:
    with localpod.exporter_program("memcached_exporter") as program:
        yield str(program)


def test_the_metrics_sidecar_scrapes_the_pods_memcached(run_pod, memcached_exporter):
    """The sidecar's command line as the pod has it, as the pod's user, against the
    pod's memcached: what a ServiceMonitor's scrape of the metrics port gets."""
    port, metrics = free_port(), free_port()
    spec = {"port": port, "memoryLimitMB": 96, "metrics": {"enabled": True, "port": metrics}}
    pod, _ = run_pod(spec)
    sidecar = next(c for c in pod["containers"] if c["name"] == "metrics")
    argv = [*localpod.run_as(pod, sidecar), memcached_exporter, *localpod.container_argv(sidecar)]
    with localpod.started(argv, lambda: tcp_probe(sidecar, "livenessProbe")):
        series = localpod.scrape(f"http://127.0.0.1:{metrics}/metrics")
    assert series["memcached_up"] == 1
    assert series["memcached_limit_bytes"] == 96 * 1024 * 1024
    assert series["memcached_max_connections"] == 1024
