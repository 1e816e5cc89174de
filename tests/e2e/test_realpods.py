"""What only pods that really run can prove (kind; skipped with "needs real pods" on KWOK):
Redis replicates and persists, NGINX serves and picks up a new configuration (HTTP/2 on
a newer nginx than the operator's, static content on port 80) and keeps serving when its
pods' own nginx rejects one, Memcached runs with the configured limits. The operator
itself runs in-cluster from its image, installed from config/ (tests/e2e/incluster.py),
one copy per test namespace.

Clients are other pods in the namespace (the images hold redis-cli and bash, or curl), reaching
the servers through their Services' DNS names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import incluster
import pytest

from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds")]
Kubectl = Callable[..., Any]
CLIENT_IMAGE = "minop/redis:7"  # Debian with bash and redis-cli (hack/kind/app-images.sh)
# trixie's nginx 1.26 (knows `http2 on;`) and curl; minop/nginx:1.22 is bookworm's, the
# operator's own nginx (hack/kind/app-images.sh)
NGINX_NEW, NGINX_OLD = "minop/nginx:1.26", "minop/nginx:1.22"


@pytest.fixture
def operator(namespace: str, kubectl: Kubectl) -> Iterator[str]:
    """The operator Deployment from config/, in and watching only the test namespace."""
    suffix = f"-{namespace}"
    try:
        yield incluster.deploy(kubectl, namespace, [namespace], suffix)
    finally:
        incluster.remove(kubectl, suffix)


def client_pod(namespace: str, kubectl: Kubectl, image: str) -> Callable[..., str]:
    """``client(*cmd)``: runs a command in a new pod ``client`` of ``image``; its stdout."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "client",
                    "image": image,
                    "command": ["sleep", "infinity"],
                    # not best-effort: on a busy node those get almost no CPU, and a
                    # test's client (the failover test's ROLE sampler) must keep time
                    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))
    wait(kubectl, namespace, "pod/client", 120)
    return lambda *cmd: run_in(kubectl, namespace, "client", *cmd)


@pytest.fixture
def client(namespace: str, kubectl: Kubectl) -> Callable[..., str]:
    return client_pod(namespace, kubectl, CLIENT_IMAGE)


@pytest.fixture
def curl(namespace: str, kubectl: Kubectl) -> Callable[..., str]:
    """``curl(*args)``: curl (with HTTP/2) in a client pod; prints the status line."""
    run = client_pod(namespace, kubectl, NGINX_NEW)
    return lambda *args: run(
        "curl", "-sS", "--max-time", "10", "-w", "\n%{http_version} %{http_code}", *args
    )


def wait(kubectl: Kubectl, ns: str, what: str, seconds: int, cond: str = "Ready") -> None:
    kubectl(
        "wait",
        "-n",
        ns,
        f"--for=condition={cond}",
        what,
        f"--timeout={seconds}s",
        timeout=seconds + 30,
    )


def run_in(kubectl: Kubectl, ns: str, pod: str, *cmd: str) -> str:
    return kubectl("exec", "-n", ns, pod, "--", *cmd).stdout


def apply(kubectl: Kubectl, ns: str, api_version: str, kind: str, name: str, **spec: Any) -> None:
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def get(kubectl: Kubectl, ns: str, what: str) -> Any:
    return json.loads(kubectl("get", what, "-n", ns, "-o", "json").stdout)


def redis_with_password(kubectl: Kubectl, ns: str, pw: str, **spec: Any) -> None:
    """Redis ``r`` with the password from Secret ``pw``, 64Mi volumes, Ready."""
    kubectl("create", "secret", "generic", "pw", "-n", ns, f"--from-literal=password={pw}")
    spec = {"passwordSecretRef": {"name": "pw"}, "storage": {"size": "64Mi"}, **spec}
    apply(kubectl, ns, "cache.minop.dev/v1alpha1", "Redis", "r", **spec)
    wait(kubectl, ns, "redis/r", 300)


def first_through_service(fetch: Callable[[], str], ok: Callable[[str], bool], what: str) -> str:
    """The first answer through a new Service's ClusterIP. Until kube-proxy has programmed
    the address (seconds under load) the packets leave the node: on the CI machines an
    egress proxy answers them (an empty 404). So wait until our pods answer, bounded."""
    return wait_for(lambda: (lambda out: out if ok(out) else None)(fetch()), 60, what, interval=1)


def http_get(client: Callable[..., str], host: str, port: int, path: str) -> str:
    """One HTTP/1.0 request through bash's /dev/tcp; the whole response."""
    script = (
        'exec 3<>"/dev/tcp/$0/$1"; printf "GET $2 HTTP/1.0\\r\\nHost: $0\\r\\n\\r\\n" >&3; '
        "timeout 5 cat <&3"
    )
    return client("timeout", "10", "bash", "-c", script, host, str(port), path)


def test_redis_replicates_requires_its_password_and_keeps_data_across_pod_loss(
    namespace, kubectl, operator, client
):
    ns, pw = namespace, "s3cret-e2e"
    redis_with_password(kubectl, ns, pw, replicas=3)

    def cli(i: int, *args: str, auth: bool = True) -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        creds = ["-a", pw, "--no-auth-warning"] if auth else []
        return client("redis-cli", "-h", host, *creds, *args).strip()

    assert cli(0, "SET", "greeting", "hello") == "OK"
    for i in (1, 2):
        wait_for(lambda i=i: cli(i, "GET", "greeting") == "hello", 30, f"key on r-{i}")
        assert "role:slave" in cli(i, "INFO", "replication")
    # without the password nothing is served
    assert "NOAUTH" in cli(0, "GET", "greeting", auth=False)
    wrong = client("redis-cli", "-h", f"r-0.r-headless.{ns}.svc.cluster.local", "-a", "x", "PING")
    assert "NOAUTH" in wrong and "PONG" not in wrong  # AUTH failed, so PING was refused

    # pod 1 is deleted: it comes back with the same claim, and with the data
    pvc_uid = get(kubectl, ns, "pvc/data-r-1")["metadata"]["uid"]
    old_uid = get(kubectl, ns, "pod/r-1")["metadata"]["uid"]
    kubectl("delete", "pod", "r-1", "-n", ns, "--wait=true")
    wait_for(
        lambda: get(kubectl, ns, "pod/r-1")["metadata"]["uid"] != old_uid,
        60,
        "r-1 recreated",
    )
    wait(kubectl, ns, "pod/r-1", 180)
    assert get(kubectl, ns, "pvc/data-r-1")["metadata"]["uid"] == pvc_uid
    vol = get(kubectl, ns, "pod/r-1")["spec"]["volumes"]
    assert {"claimName": "data-r-1"} in [v.get("persistentVolumeClaim") for v in vol]
    wait_for(lambda: cli(1, "GET", "greeting") == "hello", 60, "key on the new r-1")
    # the append-only file is in the volume (persistence.appendOnly defaults to true)
    listing = run_in(kubectl, ns, "r-0", "ls", "/data/appendonlydir")
    assert any(f.endswith(".aof") for f in listing.split()), listing
    assert cli(0, "CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("minop/redis:6.0-bullseye", "redis_version:6.0."),
        ("minop/redis:8.0-trixie", "redis_version:8.0."),
        ("minop/valkey:8.1-trixie", "valkey_version:8.1."),
    ],
)
def test_redis_of_another_version_replicates_with_its_password(
    namespace, kubectl, operator, client, image, version
):
    """The Debian releases' servers (hack/kind/app-images.sh) run the generated files."""
    ns, pw = namespace, "versions-e2e"
    redis_with_password(kubectl, ns, pw, replicas=2, image=image)

    def cli(i: int, *args: str) -> str:
        host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
        return client("redis-cli", "-h", host, "-a", pw, "--no-auth-warning", *args).strip()

    assert version in cli(0, "INFO", "server")
    assert cli(0, "SET", "greeting", "hello") == "OK"
    wait_for(lambda: cli(1, "GET", "greeting") == "hello", 30, "the key on r-1")
    assert "role:slave" in cli(1, "INFO", "replication")


def test_nginx_serves_its_health_path_and_rolls_to_a_new_config(
    namespace, kubectl, operator, client
):
    ns = namespace
    api = "web.minop.dev/v1alpha1"
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, healthcheckPath="/healthz")
    wait(kubectl, ns, "nginxserver/web", 180)
    host = f"web.{ns}.svc.cluster.local"
    first_through_service(
        lambda: http_get(client, host, 80, "/healthz"),
        lambda out: out.startswith("HTTP/1.1 200"),
        "/healthz through the Service",
    )
    before = set(get(kubectl, ns, "nginxserver/web")["status"]["podNames"])
    assert len(before) == 2

    config = (
        "server {\n  listen 8080;\n"
        "  location = /healthz { return 200 'ok\\n'; }\n"
        "  location = /version { return 200 'v2\\n'; }\n}\n"
    )
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, config=config)

    def rolled() -> bool:
        status = get(kubectl, ns, "nginxserver/web").get("status") or {}
        names = set(status.get("podNames") or [])
        return len(names) == 2 and not names & before and status.get("availableReplicas") == 2

    wait_for(rolled, 180, "both pods replaced")

    # every pod serves the new config: several requests in a row through the Service, once
    # kube-proxy dropped the old pods' addresses (until then a request may hang)
    def serves_v2() -> bool:
        for _ in range(6):
            response = http_get(client, host, 80, "/version")
            assert response.startswith("HTTP/1.1 200"), response
            assert response.rstrip().endswith("v2"), response
        return True

    wait_for(serves_v2, 60, "the new config served")


def test_nginx_keeps_serving_when_the_pods_nginx_rejects_a_config_and_serves_http2_on_a_newer_one(
    namespace, kubectl, operator, curl
):
    """`http2 on;` (nginx >= 1.25.1): the operator's nginx (1.22) cannot judge it, so the
    pods' own nginx does. On 1.22 the new pod fails its check: the rollout stops, the old
    pods keep serving, the object shows nginx's message. On 1.26 it serves HTTP/2."""
    ns, api = namespace, "web.minop.dev/v1alpha1"
    block = (
        "server {{\n  listen 8080;{extra}\n"
        "  location = /healthz {{ return 200 'ok\\n'; }}\n"
        "  location = /version {{ return 200 '{version}\\n'; }}\n}}\n"
    )
    v1 = block.format(extra="", version="v1")
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_OLD, config=v1)
    wait(kubectl, ns, "nginxserver/web", 180)
    url = f"http://web.{ns}.svc.cluster.local/version"  # Service port 80
    first_through_service(
        lambda: curl(url), lambda out: out.split() == ["v1", "1.1", "200"], "v1 served"
    )
    before = sorted(get(kubectl, ns, "nginxserver/web")["status"]["podNames"])

    h2 = block.format(extra="\n  http2 on;", version="v2")
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_OLD, config=h2)

    def degraded() -> str:
        conds = get(kubectl, ns, "nginxserver/web").get("status", {}).get("conditions", [])
        c = next((c for c in conds if c["type"] == "Degraded"), {})
        return str(c.get("message", "")) if c.get("status") == "True" else ""

    wait_for(degraded, 180, "Degraded from the new pod's own nginx -t")
    msg = degraded()
    assert msg.startswith("spec.config: nginx -t failed in pod web-"), msg
    assert msg.endswith(
        f'({NGINX_OLD}): unknown directive "http2" in /etc/nginx/minop/server.conf:3'
    ), msg
    # the old pods were never stopped, and serve the last good configuration
    status = get(kubectl, ns, "nginxserver/web")["status"]
    assert status["availableReplicas"] == 2
    pods = {p["metadata"]["name"]: p for p in get(kubectl, ns, "pods")["items"]}
    assert all(n in pods and not pods[n]["metadata"].get("deletionTimestamp") for n in before)
    for _ in range(4):
        assert curl(url).split() == ["v1", "1.1", "200"]

    # the pods' nginx is new enough: rolled out, HTTP/2 with prior knowledge
    apply(kubectl, ns, api, "NginxServer", "web", replicas=2, image=NGINX_NEW, config=h2)
    wait_for(lambda: not degraded(), 180, "Degraded cleared")
    wait(kubectl, ns, "nginxserver/web", 180)

    def serves_h2() -> bool:
        for _ in range(4):
            out = curl("--http2-prior-knowledge", url).split()
            assert out == ["v2", "2", "200"], out
        return True

    wait_for(serves_h2, 60, "HTTP/2 served by every pod")


def test_nginx_serves_content_from_a_configmap_on_port_80(namespace, kubectl, operator, curl):
    ns = namespace
    kubectl(
        "create", "configmap", "site", "-n", ns,
        "--from-literal=index.html=<h1>hello from a ConfigMap</h1>\n",
    )  # fmt: skip
    apply(
        kubectl,
        ns,
        "web.minop.dev/v1alpha1",
        "NginxServer",
        "web",
        image=NGINX_NEW,
        content={"configMapRef": {"name": "site"}},
    )
    wait(kubectl, ns, "nginxserver/web", 180)
    first_through_service(
        lambda: curl(f"http://web.{ns}.svc.cluster.local/"),
        lambda out: out.splitlines() == ["<h1>hello from a ConfigMap</h1>", "", "1.1 200"],
        "the ConfigMap's index.html served on port 80",
    )
    assert get(kubectl, ns, "service/web")["spec"]["ports"][0]["port"] == 80


def test_memcached_runs_with_the_configured_memory_and_connection_limits(
    namespace, kubectl, operator
):
    ns = namespace
    apply(
        kubectl,
        ns,
        "cache.minop.dev/v1alpha1",
        "Memcached",
        "mc",
        size=2,
        memoryLimitMB=48,
        maxConnections=321,
        resources={"limits": {"memory": "128Mi"}},
    )
    wait(kubectl, ns, "memcached/mc", 180)
    pods = get(kubectl, ns, "memcached/mc")["status"]["nodes"]
    assert len(pods) == 2
    # `stats` asked from the other pod, to each pod by its IP and through the Service
    script = 'exec 3<>"/dev/tcp/$0/11211"; printf "stats\\r\\nquit\\r\\n" >&3; timeout 5 cat <&3'
    targets = [get(kubectl, ns, f"pod/{p}")["status"]["podIP"] for p in pods]
    for target in [*targets, f"mc.{ns}.svc.cluster.local"]:
        stats = first_through_service(
            lambda target=target: run_in(
                kubectl, ns, pods[1], "timeout", "10", "bash", "-c", script, target
            ),
            lambda out: "STAT" in out,
            f"stats from {target}",
        )
        assert "STAT limit_maxbytes 50331648" in stats, stats  # 48 MiB
        assert "STAT max_connections 321" in stats, stats
