"""The Redis CRD (cache.minop.dev/v1alpha1): schema, CEL rules, printer columns, /scale."""

from minop import Kind
from minop.kit import crd, netpol
from minop.kit.workloads import scheduling_schema
from minop_redis import auth, metrics, status, tls

KIND = Kind("cache.minop.dev", "v1alpha1", "Redis", "redises")
DEFAULT_IMAGE = "redis:7.2.5"
# A request (CPU shares over best-effort pods) keeps Sentinel's timer on time; no limit.
SENTINEL_RESOURCES = {"requests": {"cpu": "100m", "memory": "32Mi"}}
MAX_MEMORY_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
RETENTION = ("Retain", "Delete")
# What spec.config may not set: the operator writes these (or fields set them).
OWNED_DIRECTIVES = (
    "bind",
    "port",
    "dir",
    "daemonize",
    "logfile",
    "protected-mode",
    "include",
    "rename-command",
    "user",
    "aclfile",
    "requirepass",
    "masteruser",
    "masterauth",
    "replicaof",
    "slaveof",
    "replica-announce-ip",
    "slave-announce-ip",
    "replica-read-only",
    "slave-read-only",
    "appendonly",
    "appenddirname",
    "appendfsync",
    "save",
    "maxmemory",
    "maxmemory-policy",
    "min-replicas-to-write",
    "min-replicas-max-lag",
    "min-slaves-to-write",
    "min-slaves-max-lag",
)


def _q(path: str) -> str:
    """CEL: the int-or-string quantity at ``path`` (int-or-string is dyn in CEL)."""
    return f"quantity(string({path}))"


def _is_q(path: str) -> str:
    return f"isQuantity(string({path}))"


STORAGE = crd.obj(
    "Persistent storage of every pod: one PersistentVolumeClaim data-<name>-<ordinal> each.",
    {
        "size": crd.quantity(
            "Size of each pod's volume, e.g. 1Gi. Growing it expands the existing claims "
            "(the StorageClass must allow volume expansion); shrinking is refused.",
            default="1Gi",
        ),
        "storageClassName": crd.object_name(
            "StorageClass of the claims; default: the cluster's default class. Immutable."
        ),
    },
    rules=[
        crd.Rule(
            f"!has(self.size) || {_is_q('self.size')} && "
            f"{_q('self.size')}.isGreaterThan(quantity('0'))",
            "storage.size must be a positive quantity such as 1Gi",
            field=".size",
        )
    ],
    default={},
)

UPDATE_STRATEGY = crd.obj(
    "How pods move to a new revision (the StatefulSet's updateStrategy).",
    {
        "type": crd.string(
            "RollingUpdate replaces pods from the highest ordinal down, one at a time; "
            "OnDelete replaces a pod only when you delete it.",
            enum=["RollingUpdate", "OnDelete"],
            default="RollingUpdate",
        ),
        "rollingUpdate": crd.obj(
            "Parameters of RollingUpdate.",
            {
                "partition": crd.integer(
                    "Only pods with an ordinal >= partition are updated; the others stay on "
                    "the current revision (a canary). Lower it to 0 to finish the rollout.",
                    minimum=0,
                    default=0,
                )
            },
        ),
    },
    rules=[
        crd.Rule(
            "!has(self.rollingUpdate) || !has(self.type) || self.type == 'RollingUpdate'",
            "rollingUpdate is only allowed with type RollingUpdate",
            field=".rollingUpdate",
        )
    ],
    default={},
)

SPEC = crd.obj(
    "Desired state: a Redis primary (pod 0) and replicas on a StatefulSet.",
    {
        "replicas": crd.integer(
            "Number of Redis pods: pod <name>-0 is the primary, every other pod replicates it.",
            minimum=0,
            default=1,
        ),
        "image": crd.string(
            "Redis (6.0 to 8.x) or Valkey (7.2 and later) container image; default: the "
            f"operator's REDIS_IMAGE or {DEFAULT_IMAGE}.",
            min_length=1,
        ),
        "storage": STORAGE,
        "persistence": crd.obj(
            "Durability of the data on the volumes.",
            {
                "appendOnly": crd.boolean(
                    "Log every write to the append-only file (appendonlydir/) besides the "
                    "RDB snapshots.",
                    default=True,
                ),
                "appendFsync": crd.string(
                    "When the append-only file reaches the disk (appendfsync): always (every "
                    "write, slowest), everysec (lose at most a second) or no (the kernel "
                    "decides).",
                    enum=["always", "everysec", "no"],
                    default="everysec",
                ),
                "save": crd.array(
                    "RDB snapshot schedule: a snapshot after `seconds` if at least `changes` "
                    "writes happened. Empty: no snapshots. Default: Redis' own schedule.",
                    crd.obj(
                        "One rule.",
                        {
                            "seconds": crd.integer("Seconds since the last snapshot.", minimum=1),
                            "changes": crd.integer("Writes since then.", minimum=1),
                        },
                        required=["seconds", "changes"],
                    ),
                    max_items=16,
                ),
            },
            default={},
        ),
        "config": {
            **crd.string_map(
                "Further redis.conf directives, e.g. {notify-keyspace-events: Ex, hz: '20'}: "
                "one line `<directive> <value>` each, written as given. The directives the "
                "operator sets (bind, port, dir, users, replication, persistence, memory, "
                "...) are refused: use their fields."
            ),
            "maxProperties": 64,
            "additionalProperties": {"type": "string", "maxLength": 1024},
            "x-kubernetes-validations": [
                crd.Rule(
                    "self.all(k, k.matches('^[a-z][a-z0-9-]*$'))",
                    "directive names are lower-case words such as notify-keyspace-events",
                ).render(),
                crd.Rule(
                    f"self.all(k, !(k in {list(OWNED_DIRECTIVES)!r}) && !k.startsWith('tls-'))",
                    "the operator sets this directive: "
                    + ", ".join(OWNED_DIRECTIVES)
                    + " and tls-* cannot be set here",
                ).render(),
                crd.Rule(
                    "self.all(k, !self[k].contains('\\n') && !self[k].contains('\\r'))",
                    "a value is one line",
                ).render(),
            ],
        },
        "podDisruptionBudget": crd.obj(
            "The PodDisruptionBudget (with more than one pod): how many pods voluntary "
            "evictions (node drains) may take down at once.",
            {
                "enabled": crd.boolean("Create it.", default=True),
                "maxUnavailable": crd.integer("Pods at most unavailable.", minimum=1, default=1),
            },
            default={},
        ),
        "podManagementPolicy": crd.string(
            "Parallel starts and stops the pods all at once; OrderedReady one at a time, each "
            "after the previous one is Ready, and stops them in reverse. Default: Parallel "
            "with sentinel (a cold start, every pod restarted, then chooses the primary from "
            "what the pods recorded, not pod 0), else OrderedReady; fixed when the "
            "StatefulSet is created. Immutable.",
            enum=["OrderedReady", "Parallel"],
        ),
        "updateStrategy": UPDATE_STRATEGY,
        "revisionHistoryLimit": crd.integer(
            "How many old StatefulSet revisions to keep for `kubectl rollout history`.",
            minimum=0,
            default=10,
        ),
        "pvcRetention": crd.obj(
            "What happens to the claims (the data) when pods go away: the StatefulSet's "
            "persistentVolumeClaimRetentionPolicy.",
            {
                "whenDeleted": crd.string(
                    "When this Redis is deleted: Retain keeps the claims, Delete removes them.",
                    enum=RETENTION,
                    default="Retain",
                ),
                "whenScaled": crd.string(
                    "When replicas go down: Retain keeps the removed pods' claims (reused on "
                    "scale-up), Delete removes them.",
                    enum=RETENTION,
                    default="Retain",
                ),
            },
            default={},
        ),
        "networkPolicy": netpol.schema(
            "A NetworkPolicy letting only these clients reach Redis (and, with failover, the "
            "Sentinels); the pods reach each other and the operator reaches them; nothing "
            "else reaches the pods. Without it any pod of the cluster can connect (the "
            "password still applies)."
        ),
        "passwordSecretRef": crd.obj(
            "A Secret key holding the password clients must send (AUTH); without it see "
            "auth.generatePassword. "
            "Changing the Secret rotates the password without an outage: pods accept the old "
            "and the new one until every pod runs with the new one.",
            {
                "name": crd.object_name("Name of the Secret, in this namespace."),
                "key": crd.string(
                    "Key of the password in the Secret.",
                    default="password",
                    pattern=r"^[-._a-zA-Z0-9]+$",
                    max_length=253,
                ),
            },
            required=["name"],
        ),
        "auth": auth.SCHEMA,
        "tls": tls.SCHEMA,
        "metrics": metrics.SCHEMA,
        "resources": crd.resources(),
        "maxMemory": crd.quantity(
            "Memory for data per pod (Redis maxmemory), e.g. 256Mi, at least 1Mi (rounded "
            "up to whole bytes); at most resources.limits.memory. Default: no limit.",
            minimum="1Mi",
        ),
        "sentinel": crd.obj(
            "Automatic failover with Redis Sentinel (Redis 6.2 or later, or Valkey): a "
            "Sentinel beside each Redis; when the primary is lost they promote the replica "
            "with the most recent data, the <name> Service follows it, and the old primary "
            "comes back as a replica. Clients may also ask the <name>-sentinel Service "
            "(SENTINEL get-master-addr-by-name <name>).",
            {
                "enabled": crd.boolean("Run Sentinels and fail over.", default=False),
                "quorum": crd.integer(
                    "Sentinels that must agree the primary is down; default: a majority of "
                    "the pods. A failover always needs a majority of the Sentinels.",
                    minimum=1,
                ),
                "downAfterMilliseconds": crd.integer(
                    "How long the primary must be unreachable before it counts as down.",
                    minimum=1000,
                    default=5000,
                ),
                "failoverTimeoutMilliseconds": crd.integer(
                    "How long a failover may take before another Sentinel retries it.",
                    minimum=1000,
                    default=20000,
                ),
                "resources": {
                    **crd.resources(
                        "Compute resources of each Sentinel container. A Sentinel whose "
                        "timer runs more than 2 s late (a starved or CPU-throttled process) "
                        "enters TILT mode and does not fail over for 30 s: keep a CPU "
                        "request, and set no CPU limit."
                    ),
                    "default": SENTINEL_RESOURCES,
                },
            },
            default={},
        ),
        "minReplicasToWrite": crd.integer(
            "The primary refuses writes unless this many replicas are connected with a lag "
            "of at most minReplicasMaxLag seconds (min-replicas-to-write): bounds what a "
            "failover can lose, and a primary cut off from every replica stops taking "
            "writes. 0: always accept writes. Default: 1 with 2 or more replicas, else 0.",
            minimum=0,
        ),
        "minReplicasMaxLag": crd.integer(
            "Seconds a replica may lag and still count for minReplicasToWrite. Default: "
            "with sentinel, a third of downAfterMilliseconds (1 to 10; a primary cut off "
            "from its replicas refuses writes before another is promoted), else 10.",
            minimum=1,
        ),
        "maxMemoryPolicy": crd.string(
            "What Redis does when maxMemory is reached (maxmemory-policy).",
            enum=MAX_MEMORY_POLICIES,
            default="noeviction",
        ),
        **scheduling_schema(),
    },
    rules=[
        crd.Rule(
            "!has(self.sentinel) || !has(self.sentinel.enabled) || !self.sentinel.enabled || "
            "!has(self.replicas) || self.replicas == 0 || self.replicas >= 3",
            "sentinel.enabled needs at least 3 replicas: with 2, losing one pod leaves no "
            "majority of Sentinels to fail over",
            field=".replicas",
        ),
        crd.Rule(
            "!has(self.sentinel) || !has(self.sentinel.quorum) || !has(self.replicas) || "
            "self.replicas == 0 || self.sentinel.quorum <= self.replicas",
            "sentinel.quorum must be at most replicas: there is one Sentinel per pod",
            field=".sentinel.quorum",
        ),
        crd.Rule(
            "!has(self.passwordSecretRef) || !has(self.auth) || !has(self.auth.generatePassword)",
            "auth.generatePassword applies only without passwordSecretRef",
            field=".auth.generatePassword",
        ),
        crd.Rule(
            "!has(self.minReplicasToWrite) || !has(self.replicas) || "
            "self.minReplicasToWrite < self.replicas",
            "minReplicasToWrite must be below replicas: the primary itself is not a replica",
            field=".minReplicasToWrite",
        ),
        crd.Rule(
            "has(self.podManagementPolicy) == has(oldSelf.podManagementPolicy) && "
            "(!has(self.podManagementPolicy) || "
            "self.podManagementPolicy == oldSelf.podManagementPolicy)",
            "podManagementPolicy is immutable: a StatefulSet cannot change it",
            field=".podManagementPolicy",
            reason="FieldValueForbidden",
        ),
        crd.Rule(
            "!has(self.storage) || !has(oldSelf.storage) || "
            "has(self.storage.storageClassName) == has(oldSelf.storage.storageClassName) && "
            "(!has(self.storage.storageClassName) || "
            "self.storage.storageClassName == oldSelf.storage.storageClassName)",
            "storage.storageClassName is immutable: a StatefulSet's volumeClaimTemplates "
            "cannot change",
            field=".storage.storageClassName",
            reason="FieldValueForbidden",
        ),
        crd.Rule(
            "!has(self.storage) || !has(oldSelf.storage) || !has(self.storage.size) || "
            "!has(oldSelf.storage.size) || "
            f"!{_is_q('self.storage.size')} || !{_is_q('oldSelf.storage.size')} || "
            f"{_q('self.storage.size')}.compareTo({_q('oldSelf.storage.size')}) >= 0",
            "storage.size cannot shrink: a PersistentVolumeClaim can only grow",
            field=".storage.size",
            reason="FieldValueForbidden",
        ),
    ],
)

DEFINITION = crd.definition(
    KIND,
    description="Redis on a StatefulSet: a primary (pod 0), replicas, persistent volumes, "
    "ordered rollouts and password rotation without an outage.",
    spec=SPEC,
    status=status.STATUS,
    short_names=["rds"],
    columns=[
        crd.Column("Replicas", ".spec.replicas", "integer", "Desired pods."),
        crd.Column("Ready", ".status.readyReplicas", "integer", "Ready pods."),
        crd.Column("Primary", ".status.primary", "string", "The primary pod."),
        crd.Column(
            "Status", '.status.conditions[?(@.type=="Ready")].reason', "string", "Why (not) Ready."
        ),
        crd.Column("Revision", ".status.updateRevision", "string", "Update revision.", priority=1),
    ],
    scale=crd.Scale(".spec.replicas"),
)

EXAMPLE = {
    "apiVersion": "cache.minop.dev/v1alpha1",
    "kind": "Redis",
    "metadata": {"name": "redis-sample"},
    "spec": {"replicas": 3, "storage": {"size": "1Gi"}},
}
