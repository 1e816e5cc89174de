"""The nginx builds as fixtures: ``trixie`` (debootstrapped, needs root) and ``nginx``
(each build in turn); ``serve``: the generated pod's nginx started as the pod runs it."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from minop_nginx import config
from nginx_builds import BOOKWORM, Nginx, Served, http_probe, pod_of

from minop.kit import localpod
from minop.kit.testing import free_port


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
