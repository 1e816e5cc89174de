"""Pods of a Redis as local processes, for the real-program checks
(test_redis_real_*.py) on every server minop supports (redis_servers.py).

What runs is what the StatefulSet runs: the init container's command (init.sh from
the ConfigMap), then the redis container's command, and the probes' exec command,
as the pod's numeric user (uid 999, gid = fsGroup 999) when the tests run as root.
What a node would provide differs, and only through the environment variables the
pod spec sets (the test fails if a name is not in the pod spec):

* ``REDIS_BIND`` 127.0.0.1 instead of every interface; ``REDIS_PORT`` a free port
  per "pod"; ``REDIS_PRIMARY_HOST``/``REDIS_PRIMARY_PORT`` 127.0.0.1 and pod 0's
  port instead of ``<name>-0.<name>-headless.<ns>.svc:6379``;
* ``REDIS_CONFIG_DIR``, ``REDIS_AUTH_DIR``, ``REDIS_RUN_DIR``, ``REDIS_DATA_DIR``:
  temporary directories laid out like the ConfigMap, Secret (files 0440, group
  999, as the kubelet writes them with fsGroup), emptyDir and PVC mounts; the
  same prefixes are swapped in the two commands' file arguments;
* the shared redis.conf gets one more line: the harness's own ACL user ``ADMIN_USER``
  with every command, for the checks that read or change the server's configuration
  (``Pod.admin``); clients, who may not (test_redis_real_acl.py), use the default user;
* with spec.tls ``REDIS_TLS_DIR``: the TLS Secret's files (0440, group 999), a CA
  and a certificate for 127.0.0.1 that ``write_tls`` generates.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any

from minop_redis import auth, children, config, tls
from minop_redis.children import Instance
from partition import Partition
from redis_pod import ADMIN_PASSWORD, ADMIN_USER, Pod
from redis_servers import AS_ROOT, Server

from minop.kit import localpod
from minop.kit.testing import free_port, tls_secret_data

SELECTOR = {"app.kubernetes.io/instance": "r"}


class Cluster:
    """The "mounts" all pods share (ConfigMap, Secrets) and the pods themselves."""

    def __init__(
        self, root: Path, spec: dict[str, Any], server: Server, partition: Partition | None = None
    ) -> None:
        """``partition``: the pods reach each other through links it can cut
        (partition.py); without, directly on 127.0.0.1."""
        self.root, self.server, self.partition = root, server, partition
        self.pod_servers: dict[int, Server] = {}  # ordinal -> another server (a canary)
        self.inst = Instance("r", "ns", spec, SELECTOR, SELECTOR, "redis")
        sts = children.statefulset(
            self.inst, config_hash="c", auth_hash="a", claim_size="1Gi", storage_class=None
        )
        self.pod_spec = sts["spec"]["template"]["spec"]
        self.pod_management: str = sts["spec"]["podManagementPolicy"]
        sec = self.pod_spec["securityContext"]
        self.uid, self.gid = sec["runAsUser"], sec["fsGroup"]
        self.config, self.auth = root / "config", root / "auth"
        self.config.mkdir()
        self.tls_dir = root / "tls"
        self.tls: dict[str, str] | None = None  # the TLS Secret's files (spec.tls)
        if tls.settings(spec):
            self.write_tls(tls_secret_data("r"))
        self.pods: list[Pod] = []
        self.sentinel_ports: list[int] = []
        self.write_config()

    def write_config(self) -> None:
        """The ConfigMap's files, as the kubelet updates them; the Sentinel peers are
        the pods' local addresses (what their stable DNS names resolve to in a cluster)."""
        while len(self.sentinel_ports) < self.inst.replicas:
            self.sentinel_ports.append(free_port())
        data = config.configmap(self.inst)["data"]
        if "sentinel-peers" in data:
            ports = self.sentinel_ports[: self.inst.replicas]
            data["sentinel-peers"] = " ".join(
                f"{self.announced(i)}:{p}" for i, p in enumerate(ports)
            )
        # not a user of the product: the test's administrator (see the module docstring)
        digest = hashlib.sha256(ADMIN_PASSWORD).hexdigest()
        data["redis.conf"] += f"user {ADMIN_USER} on #{digest} ~* +@all\n"
        volume = next(v for v in self.pod_spec["volumes"] if v["name"] == "config")
        for key, value in data.items():
            (self.config / key).write_text(value)
            (self.config / key).chmod(volume["configMap"].get("defaultMode", 0o644))

    def scale(self, replicas: int) -> None:
        """spec.replicas changed: the ConfigMap follows (the pod template does not:
        test_scaling_changes_nothing_a_running_pod_runs); pods added start, pods
        removed stop, last first, as the StatefulSet controller does."""
        self.inst = replace(self.inst, spec={**self.inst.spec, "replicas": replicas})
        self.write_config()
        while len(self.pods) > replicas:
            gone = self.pods.pop()
            gone.stop()
            for link in gone.links:
                link.close()
        self.start(*range(len(self.pods), replicas))

    @property
    def sentinel_container(self) -> dict[str, Any] | None:
        return next((c for c in self.pod_spec["containers"] if c["name"] == "sentinel"), None)

    def announced(self, ordinal: int) -> str:
        """The address the other pods reach a pod at (its link's, with a partition)."""
        return f"127.0.2.{ordinal + 1}" if self.partition else "127.0.0.1"

    def write_secret(self, state: auth.State) -> None:
        """Replace the Secret volume's files, as the kubelet does when the Secret changes."""
        data = auth.secret("r-auth", state)["data"]
        self._secret_volume(self.auth, {k: base64.b64decode(v) for k, v in data.items()})

    def write_tls(self, files: dict[str, str]) -> None:
        """The TLS Secret's volume (tls.crt, tls.key, ca.crt)."""
        self.tls = files
        self._secret_volume(self.tls_dir, {k: v.encode() for k, v in files.items()})

    def _secret_volume(self, where: Path, files: dict[str, bytes]) -> None:
        """Files 0440 of group fsGroup, as the kubelet writes a Secret with defaultMode 0440."""
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        for key, value in files.items():
            f = where / key
            f.write_bytes(value)
            f.chmod(0o440)
            if AS_ROOT:
                os.chown(f, 0, self.gid)

    def client_tls(self, cert: bool = True) -> list[str]:
        """redis-cli's TLS options for a client trusting the CA (``cert``: presenting
        the Secret's certificate too); none without spec.tls."""
        if self.tls is None:
            return []
        d = self.tls_dir
        own = ["--cert", str(d / "tls.crt"), "--key", str(d / "tls.key")] if cert else []
        return ["--tls", "--cacert", str(d / "ca.crt"), *own]

    def operator_tls(self) -> ssl.SSLContext | None:
        """The TLS the operator speaks to the pods (hooks.reconcile's context)."""
        if self.tls is None:
            return None
        f = {k: v.encode() for k, v in self.tls.items()}
        m = tls.Material("test", f["ca.crt"], f["tls.crt"], f["tls.key"])
        return tls.client_context(m, tls.client_auth(self.inst.spec))

    def as_pod_user(self, cmd: list[str], container: dict[str, Any] | None = None) -> list[str]:
        """As the container's securityContext says (user, fsGroup, no privilege
        escalation, no capabilities); as the current user when not root."""
        if not AS_ROOT:
            return cmd
        return [*localpod.run_as(self.pod_spec, container or self.pod_spec["containers"][0]), *cmd]

    def start(self, *ordinals: int) -> None:
        for i in ordinals:
            if len(self.pods) <= i:
                self.pods.append(Pod(self, i))
            self.pods[i].start()

    def restart(self, i: int) -> None:
        self.pods[i].stop()
        self.pods[i].start()

    @property
    def primary(self) -> Pod:
        return self.pods[0]

    def replicating(self, *passwords: bytes | None) -> bool:
        """Every replica's link to the primary is up, and the primary counts each as a
        good replica (acknowledged within min-replicas-max-lag: it accepts writes); asked
        with whichever of ``passwords`` a pod accepts (during a rotation pods differ)."""

        def info(p: Pod) -> str:
            outs = (p.cli("info", "replication", password=pw) for pw in passwords)
            return next((out for out in outs if "# Replication" in out), "")

        if not all("master_link_status:up" in info(p) for p in self.pods[1:]):
            return False
        good = re.search(r"min_slaves_good_slaves:(\d+)", info(self.primary))
        return good is None or int(good.group(1)) == len(self.pods) - 1

    def stop(self) -> None:
        for p in self.pods:
            p.stop()
            for link in p.links:
                link.close()


FIRST = b'first "pass" word\\ with spaces'  # hashed in redis.conf: no quoting trouble
SECOND = b"second-password"
FAILOVER = {"enabled": True, "downAfterMilliseconds": 2000, "failoverTimeoutMilliseconds": 10000}
