"""The Redis CRD (cache.minop.dev/v1alpha1)."""

from minop import crd
from minop.resource import Kind
from minop.workloads import scheduling_schema

KIND = Kind("cache.minop.dev", "v1alpha1", "Redis", "redises")
DEFAULT_IMAGE = "redis:7.2.5"
POLICIES = [
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


def _retention(what: str) -> dict:
    return crd.string(
        f"What happens to the PVCs {what}.", enum=["Retain", "Delete"], default="Retain"
    )


SPEC = crd.obj(
    "Desired state of the Redis primary and its replicas.",
    {
        "replicas": crd.integer(
            "Pods: pod 0 is the primary, the others replicate it.", minimum=0, maximum=20, default=1
        ),
        "image": crd.string(
            "Container image; default: the operator's REDIS_IMAGE or " + DEFAULT_IMAGE + ".",
            min_length=1,
        ),
        "storage": crd.obj(
            "The data volume of each pod (claim `data`).",
            {
                "size": {
                    **crd.quantity(
                        "Requested size; growing it expands the existing PVCs, "
                        "shrinking is refused.",
                        default="1Gi",
                    ),
                    "maxLength": 32,
                },
                "storageClassName": crd.string(
                    "StorageClass of the PVCs; default: the cluster's default class. Immutable.",
                    max_length=253,
                ),
            },
            rules=[
                crd.Rule(
                    "!has(oldSelf.size) || !has(self.size) || quantity(string(self.size))"
                    ".compareTo(quantity(string(oldSelf.size))) >= 0",
                    "storage.size cannot shrink",
                    field=".size",
                ),
                crd.Rule(
                    "has(self.storageClassName) == has(oldSelf.storageClassName) && "
                    "(!has(self.storageClassName) || "
                    "self.storageClassName == oldSelf.storageClassName)",
                    "storage.storageClassName is immutable",
                    field=".storageClassName",
                ),
            ],
            default={},
        ),
        "persistence": crd.obj(
            "Durability.",
            {
                "appendOnly": crd.boolean(
                    "Write an append-only file (appendonlydir/).", default=True
                ),
            },
            default={},
        ),
        "podManagementPolicy": {
            **crd.string(
                "OrderedReady: pods start one after another; Parallel: all at once. Immutable.",
                enum=["OrderedReady", "Parallel"],
                default="OrderedReady",
            ),
            "x-kubernetes-validations": [
                crd.Rule("self == oldSelf", "podManagementPolicy is immutable").render()
            ],
        },
        "updateStrategy": crd.obj(
            "How pods move to a new revision.",
            {
                "type": crd.string(
                    "RollingUpdate (highest ordinal first) or OnDelete.",
                    enum=["RollingUpdate", "OnDelete"],
                    default="RollingUpdate",
                ),
                "partition": crd.integer(
                    "RollingUpdate: only pods with an ordinal >= partition are updated.", minimum=0
                ),
            },
            rules=[
                crd.Rule(
                    "!has(self.partition) || self.type == 'RollingUpdate'",
                    "partition needs type RollingUpdate",
                    field=".partition",
                )
            ],
            default={},
        ),
        "revisionHistoryLimit": crd.integer(
            "Old revisions kept for rollbacks.", minimum=0, default=10
        ),
        "pvcRetention": crd.obj(
            "What happens to the PVCs (data is kept unless asked).",
            {
                "whenDeleted": _retention("when the Redis is deleted"),
                "whenScaled": _retention("of pods removed by scaling down"),
            },
            default={},
        ),
        "passwordSecretRef": crd.obj(
            "A Secret key holding the password; changing it rotates "
            "the password without an outage.",
            {
                "name": crd.object_name("Name of the Secret."),
                "key": crd.string("Key in the Secret.", default="password", max_length=253),
            },
            required=["name"],
        ),
        "maxMemory": crd.string(
            "maxmemory, e.g. 256mb (0: no limit).", pattern=r"^[0-9]+([kmg]b?)?$", max_length=16
        ),
        "maxMemoryPolicy": crd.string("maxmemory-policy.", enum=POLICIES),
        "resources": crd.resources(),
        **scheduling_schema(),
    },
)

STATUS = crd.obj(
    "Observed state.",
    {
        "readyReplicas": crd.integer("Pods ready."),
        "currentRevision": crd.string("StatefulSet revision of the pods below the partition."),
        "updateRevision": crd.string("StatefulSet revision being rolled out."),
        "primary": crd.string("Name of the primary pod."),
        "podNames": crd.array("Names of the pods, sorted.", crd.string("A pod name.")),
        "selector": crd.string("Label selector of the pods (for the scale subresource)."),
        "observedGeneration": crd.integer("Generation last reconciled."),
        "conditions": crd.conditions(),
    },
)

DEFINITION = crd.definition(
    KIND,
    description="Redis on a StatefulSet: pod 0 is the primary, the others replicate it; "
    "each pod keeps its data on its own PersistentVolumeClaim.",
    spec=SPEC,
    status=STATUS,
    short_names=["rds"],
    columns=[
        crd.Column("Replicas", ".spec.replicas", "integer", "Desired pods."),
        crd.Column("Ready", ".status.readyReplicas", "integer", "Ready pods."),
        crd.Column("Primary", ".status.primary", "string", "The primary pod.", priority=1),
    ],
    scale=crd.Scale(".spec.replicas", ".status.readyReplicas"),
)

EXAMPLE = {
    "apiVersion": "cache.minop.dev/v1alpha1",
    "kind": "Redis",
    "metadata": {"name": "redis-sample"},
    "spec": {"replicas": 3, "storage": {"size": "1Gi"}},
}
