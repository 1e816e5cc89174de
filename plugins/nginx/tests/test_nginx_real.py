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

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from minop_nginx import config
from nginx_builds import BOOKWORM, HTTP2, Nginx, check, needs_nginx, pod_of

from minop.kit import localpod

pytestmark = needs_nginx


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
