"""Generated nginx configuration: builders, `nginx -t`, and a real nginx serving it."""

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from minop_nginx import children, config
from minop_nginx.crd import DEFINITION

from minop.crd import undocumented

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (make unit)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pod_of(spec, digest="h"):
    return children.deployment("web", spec, "img", {}, {}, digest)["spec"]["template"]


def test_pods_are_restricted_with_writable_scratch_dirs_only():
    pod = pod_of({})["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsUser"] == 101 and pod["securityContext"]["runAsNonRoot"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/cache/nginx", "/run"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_tls_and_config_map_ref_are_mounted_and_probed_over_https():
    pod = pod_of({"tls": {"secretName": "cert"}, "configMapRef": {"name": "site"}})
    c = pod["spec"]["containers"][0]
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {config.TLS_DIR, config.USER_DIR}
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    files = config.files({"configMapRef": {"name": "site"}})
    assert "server.conf" not in files and f"{config.USER_DIR}/*.conf" in files["nginx.conf"]


def test_config_hash_is_on_the_pod_template():
    assert pod_of({}, "abc")["metadata"]["annotations"][children.CONFIG_HASH] == "abc"


def test_every_crd_field_is_documented():
    schema = DEFINITION["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert undocumented(schema) == []


@needs_nginx
@pytest.mark.parametrize("tls", [False, True])
def test_generated_config_passes_nginx_t(tls):
    spec = {"port": 8443, "tls": {"secretName": "x"}} if tls else {"port": 8080}
    files = config.files(spec)
    config.check.cache_clear()
    config.check(files["nginx.conf"], files["server.conf"], tls)


@needs_nginx
def test_invalid_server_block_fails_with_nginx_own_message():
    files = config.files({"config": "server { listen 8080; bogus_directive on; }"})
    with pytest.raises(config.InvalidConfig, match='unknown directive "bogus_directive"'):
        config.check(files["nginx.conf"], files["server.conf"], False)


@needs_nginx
def test_real_nginx_serves_the_health_path_as_the_pod_runs_it():
    # a directory the pod's non-root user can traverse (pytest's tmp dirs are 0700)
    tmp_path = Path(tempfile.mkdtemp(prefix="minop-nginx-test-"))
    tmp_path.chmod(0o755)
    port = free_port()
    spec = {"port": port, "healthcheckPath": "/ready"}
    pod = pod_of(spec)["spec"]
    c = pod["containers"][0]
    uid = pod["securityContext"]["runAsUser"]
    # Lay the files out as the pod's mounts do, under tmp_path (paths swapped accordingly).
    swap = {config.CONF_DIR: str(tmp_path / "conf"), "/tmp/": f"{tmp_path}/tmp/"}
    for d in ("conf", "tmp"):
        (tmp_path / d).mkdir()
    for name, text in config.files(spec).items():
        (tmp_path / "conf" / name).write_text(config.relocate(text, swap))
    shutil.chown(tmp_path / "tmp", uid, uid)
    tmp_path.chmod(0o755)
    cmd = [
        config.CONF_DIR + "/nginx.conf" if a == f"{config.CONF_DIR}/nginx.conf" else a
        for a in c["command"]
    ]
    cmd = [
        str(tmp_path / "conf" / "nginx.conf") if a.startswith(config.CONF_DIR) else a for a in cmd
    ]
    cmd[0] = NGINX
    # The container runtime hands the process a stdout it may reopen (/dev/stdout).
    out = tmp_path / "stdout"
    out.touch()
    shutil.chown(out, uid, uid)
    setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
    proc = subprocess.Popen(
        [*setpriv, *cmd, "-p", str(tmp_path)], stdout=out.open("w"), stderr=subprocess.STDOUT
    )
    try:
        probe = c["readinessProbe"]["httpGet"]
        url = f"http://127.0.0.1:{port}{probe['path']}"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    assert r.status == 200 and r.read() == b"ok\n"
                    break
            except OSError:
                assert proc.poll() is None, out.read_text()
                assert time.monotonic() < deadline, "nginx never answered"
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(tmp_path, ignore_errors=True)
