"""spec.metrics: a redis_exporter sidecar in every pod and, optionally, the alerts
(the generic part — the Service, ServiceMonitor and PrometheusRule — is the kit's
:mod:`minop.kit.monitoring`).

The exporter asks the pod's own server, as ACL user ``exporter``: INFO, LATENCY
LATEST and HISTOGRAM, PING and naming its connection; no key, no CONFIG
(``CONFIG GET *`` would hand it ``masterauth``), no SLOWLOG (its entries hold the
arguments of clients' commands). Its flags keep it from issuing anything else, so no
scrape leaves a refusal in the ACL LOG. Its password is the internal one; init.sh
writes it in redis_exporter's password-file format (a JSON map from the URI it dials)
on the pod's in-memory volume, which the sidecar mounts read-only: it is in no pod
spec and no environment.

The Sentinels are not scraped: redis_exporter asks one address per process (the
multi-target ``/scrape`` endpoint, disabled here, would let whoever reaches the
metrics port make the pod dial any address), and what alerts need of failover
(which pod is primary, and whether any is) every server's own INFO tells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from minop.kit import monitoring
from minop.kit import workloads as wl
from minop_redis import tls

DEFAULT_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.97.0"
EXPORTER_IMAGE_ENV = "REDIS_EXPORTER_IMAGE"
DEFAULT_METRICS_PORT = 9121  # redis_exporter's own default
USER = "exporter"
PASSWORD_FILE = "exporter.json"  # in the pod's run volume (init.sh writes it)

# Alert thresholds (the README's Metrics section names them).
MEMORY_RATIO = 0.9  # used_memory / maxmemory
REPLICA_LAG_S = 10  # seconds since a replica's last acknowledgement (it sends one a second)
CLIENTS_RATIO = 0.9  # connected_clients / maxclients (INFO has maxclients from 7.0)

SCHEMA = monitoring.schema(
    "redis_exporter",
    EXPORTER_IMAGE_ENV,
    DEFAULT_EXPORTER_IMAGE,
    DEFAULT_METRICS_PORT,
    alerts="a server down, no primary or two, replication broken or lagging, memory near "
    "maxmemory, rejected connections and clients near maxclients",
)


def enabled(spec: Mapping[str, Any]) -> bool:
    return monitoring.enabled(spec)


def env(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What init.sh reads to define the exporter's user and write its password file
    (none without metrics: no user nobody uses)."""
    return [{"name": "REDIS_EXPORTER_USER", "value": USER}] if enabled(spec) else []


def sidecar(
    spec: Mapping[str, Any],
    port: int,
    run_dir: str,
    server_name: str,
    image: str = DEFAULT_EXPORTER_IMAGE,
) -> dict[str, Any]:
    """The redis_exporter container: it reads the run volume's password file (the
    pod's user owns it), and runs under the pod's user like the others. With spec.tls
    it speaks TLS, presents the pod's certificate (as the probes do) and checks that
    the server's names ``server_name`` (the pod's stable DNS name: unlike Redis'
    replicas and Sentinels, redis_exporter checks host names)."""
    args = [
        "--disable-scrape-endpoint",  # /scrape?target=: dial anywhere, on request
        "--config-command=-",  # no CONFIG GET: maxmemory and maxclients are in INFO
        "--exclude-slowlog-metrics",
        "--exclude-commandlog-metrics",  # Valkey's COMMANDLOG: the same entries
    ]
    scheme = "redis"
    env: list[dict[str, Any]] = [{"name": "REDIS_PORT", "value": str(port)}]
    if tls.settings(spec):
        scheme = "rediss"
        args += [
            f"--tls-ca-cert-file={tls.DIR}/ca.crt",
            f"--tls-client-cert-file={tls.DIR}/tls.crt",
            f"--tls-client-key-file={tls.DIR}/tls.key",
        ]
        env += [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "REDIS_EXPORTER_TLS_SERVER_NAME", "value": server_name},
        ]
    container = monitoring.sidecar(spec, image, DEFAULT_METRICS_PORT, args)
    # redis_exporter's environment names; the kubelet expands $(REDIS_PORT), $(POD_NAME)
    container["env"] = [
        *env,
        {"name": "REDIS_ADDR", "value": f"{scheme}://127.0.0.1:$(REDIS_PORT)"},
        {"name": "REDIS_USER", "value": USER},
        {"name": "REDIS_PASSWORD_FILE", "value": f"{run_dir}/{PASSWORD_FILE}"},
    ]
    container["volumeMounts"] = [
        {"name": "run", "mountPath": run_dir, "readOnly": True},
        *tls.mounts(spec),
    ]
    return container


def exporter_image() -> str:
    return wl.operand_image({}, EXPORTER_IMAGE_ENV, DEFAULT_EXPORTER_IMAGE)


def _alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def alerts(inst: wl.Instance) -> list[dict[str, Any]]:
    """The PrometheusRule's groups: each expression reads only this Redis's series."""
    s = monitoring.series_selector(inst)
    who = f"Redis {inst.namespace}/{inst.name}"
    replicas = int(inst.spec.get("replicas", 1))
    rules = [
        _alert(
            "RedisDown",
            f"redis_up{{{s}}} == 0",
            "1m",
            "critical",
            f"{who}: the exporter of pod {{{{ $labels.pod }}}} cannot reach its server",
        ),
        _alert(
            "RedisNoPrimary",
            # some server answers, none is primary ("unless": both sides have no labels)
            f'count(redis_up{{{s}}} == 1) unless count(redis_instance_info{{{s},role="master"}})',
            "1m",
            "critical",
            f"{who}: no server is primary; writes fail",
        ),
        _alert(
            "RedisMultiplePrimaries",
            f'count(redis_instance_info{{{s},role="master"}}) > 1',
            "1m",
            "critical",
            f"{who}: more than one server is primary; writes to the wrong one will be lost",
        ),
        _alert(
            "RedisReplicationBroken",
            f"redis_master_link_up{{{s}}} == 0",
            "2m",
            "critical",
            f"{who}: replica {{{{ $labels.pod }}}} has lost its link to the primary",
        ),
        _alert(
            "RedisReplicaLagging",
            f"redis_connected_slave_lag_seconds{{{s}}} > {REPLICA_LAG_S}",
            "2m",
            "warning",
            f"{who}: replica {{{{ $labels.slave_ip }}}} has not acknowledged for "
            f"more than {REPLICA_LAG_S}s",
        ),
        _alert(
            "RedisMemoryNearMax",
            f"redis_memory_used_bytes{{{s}}} / (redis_memory_max_bytes{{{s}}} > 0) > "
            f"{MEMORY_RATIO}",
            "5m",
            "warning",
            f"{who}: pod {{{{ $labels.pod }}}} uses over {MEMORY_RATIO:.0%} of maxmemory; "
            "it evicts keys or refuses writes beyond",
        ),
        _alert(
            "RedisRejectedConnections",
            f"increase(redis_rejected_connections_total{{{s}}}[5m]) > 0",
            "1m",
            "warning",
            f"{who}: pod {{{{ $labels.pod }}}} refused connections (maxclients reached)",
        ),
        _alert(
            "RedisTooManyClients",
            f"redis_connected_clients{{{s}}} / (redis_max_clients{{{s}}} > 0) > {CLIENTS_RATIO}",
            "5m",
            "warning",
            f"{who}: pod {{{{ $labels.pod }}}} has over {CLIENTS_RATIO:.0%} of maxclients "
            "connected",
        ),
    ]
    if replicas > 1:
        rules.insert(
            4,
            _alert(
                "RedisReplicasMissing",
                f"max(redis_connected_slaves{{{s}}}) < {replicas - 1}",
                "5m",
                "warning",
                f"{who}: the primary has fewer than {replicas - 1} replicas connected",
            ),
        )
    return [{"name": f"redis-{inst.namespace}-{inst.name}", "rules": rules}]
