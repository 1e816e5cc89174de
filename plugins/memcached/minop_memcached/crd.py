"""The Memcached CRD (cache.minop.dev/v1alpha1)."""

from minop import Kind
from minop.kit import crd
from minop.kit.workloads import scheduling_schema

KIND = Kind("cache.minop.dev", "v1alpha1", "Memcached", "memcacheds")
DEFAULT_IMAGE = "memcached:1.6.38"
DEFAULT_PORT = 11211

_LIMIT = "self.resources.limits['memory']"

SPEC = crd.obj(
    "Desired state of the Memcached cluster.",
    {
        "size": crd.integer("Number of memcached pods.", minimum=1, maximum=10, default=1),
        "image": crd.string(
            "Container image; default: the operator's MEMCACHED_IMAGE or " + DEFAULT_IMAGE + ".",
            min_length=1,
            max_length=512,
        ),
        "memoryLimitMB": crd.integer(
            "Memory for items per pod, in MiB (memcached -m); keep resources.limits.memory "
            "above it, memcached also needs memory for connections and its hash table.",
            minimum=1,
            maximum=1048576,
            default=64,
        ),
        "maxConnections": crd.integer(
            "Maximum simultaneous client connections per pod (memcached -c).",
            minimum=1,
            maximum=65536,
            default=1024,
        ),
        "maxItemSizeMB": crd.integer(
            "Largest item memcached stores, in MiB (memcached -I; its default is 1); at most "
            "half of memoryLimitMB.",
            minimum=1,
            maximum=1024,
        ),
        "threads": crd.integer(
            "Worker threads per pod (memcached -t; its default is 4); more than the pod's "
            "CPUs does not help.",
            minimum=1,
            maximum=64,
        ),
        "verbosity": crd.integer(
            "Log verbosity (memcached -v, -vv, -vvv): 1 errors and warnings, 2 also every "
            "client command, 3 also internal state transitions.",
            minimum=0,
            maximum=3,
            default=0,
        ),
        "port": crd.integer(
            "TCP port memcached and the Service listen on.",
            minimum=1,
            maximum=65535,
            default=DEFAULT_PORT,
        ),
        "resources": crd.resources(),
        **scheduling_schema(),
    },
    rules=[
        # A container at exactly -m is OOM-killed once the cache fills: refuse it up front.
        crd.Rule(
            "!has(self.resources) || !has(self.resources.limits) || "
            f"!('memory' in self.resources.limits) || !isQuantity(string({_LIMIT})) || "
            # as a float: string(int) would blow the API server's CEL cost estimate
            f"quantity(string({_LIMIT})).asApproximateFloat() > "
            "double(self.memoryLimitMB) * 1048576.0",
            "resources.limits.memory must be larger than memoryLimitMB (in MiB): memcached "
            "needs memory beyond its items for connections and its hash table",
            field=".resources.limits.memory",
        ),
        # memcached refuses to start otherwise ("Cannot set item size limit higher than 1/2
        # of memory max"): a pod in CrashLoopBackOff is a worse place to learn it.
        crd.Rule(
            "!has(self.maxItemSizeMB) || self.maxItemSizeMB * 2 <= self.memoryLimitMB",
            "maxItemSizeMB must be at most half of memoryLimitMB",
            field=".maxItemSizeMB",
        ),
    ],
)

STATUS = crd.obj(
    "Observed state.",
    {
        "nodes": crd.array("Names of the memcached pods, sorted.", crd.string("A pod name.")),
        "replicas": crd.integer("Pods that exist and are not terminating (the scale status)."),
        "readyReplicas": crd.integer("Pods ready to serve."),
    },
)

DEFINITION = crd.definition(
    KIND,
    description="A Memcached cluster: a Deployment of memcached pods behind a headless Service.",
    spec=SPEC,
    status=STATUS,
    short_names=["mc"],
    columns=[
        crd.Column("Size", ".spec.size", "integer", "Desired pods."),
        crd.Column("Ready", ".status.readyReplicas", "integer", "Ready pods."),
    ],
    scale=crd.Scale(".spec.size"),
)

EXAMPLE = {
    "apiVersion": "cache.minop.dev/v1alpha1",
    "kind": "Memcached",
    "metadata": {"name": "memcached-sample"},
    "spec": {
        "size": 3,
        "memoryLimitMB": 128,
        "maxConnections": 2048,
        "resources": {
            "requests": {"cpu": "100m", "memory": "160Mi"},
            "limits": {"memory": "160Mi"},
        },
    },
}
