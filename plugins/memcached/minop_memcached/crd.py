"""The Memcached CRD (cache.minop.dev/v1alpha1)."""

from minop import Kind
from minop.kit import crd, monitoring, netpol
from minop.kit.workloads import drain_schema, scheduling_schema

KIND = Kind("cache.minop.dev", "v1alpha1", "Memcached", "memcacheds")
DEFAULT_IMAGE = "memcached:1.6.38"
DEFAULT_PORT = 11211
DEFAULT_DRAIN = 10
DEFAULT_EXPORTER_IMAGE = "prom/memcached-exporter:v0.15.0"
DEFAULT_METRICS_PORT = 9150
MAX_SIZE = 1000

_LIMIT = "self.resources.limits['memory']"

SPEC = crd.obj(
    "Desired state of the Memcached cluster.",
    {
        "size": crd.integer(
            "Number of memcached pods, up to 1000: the status lists every pod (and, with "
            "stableNames, every server name), which must stay far below the API server's "
            "object size limit.",
            minimum=1,
            maximum=MAX_SIZE,
            default=1,
        ),
        "stableNames": crd.boolean(
            "Run the pods as a StatefulSet: each keeps its name <name>-<ordinal> and the DNS "
            "name <name>-<ordinal>.<name>.<namespace>.svc across restarts and rollouts, so "
            "consistent-hashing clients keep their key placement (status.servers lists them). "
            "Changing it replaces every pod (the cache starts empty).",
            default=False,
        ),
        "drainSeconds": drain_schema(DEFAULT_DRAIN),
        "warmRestart": crd.boolean(
            "Keep the cache across a restart of the memcached container (a failed liveness "
            "probe, a restart of the kubelet): items live in a file on a memory-backed "
            "emptyDir (memcached -e) and the stop saves their index beside it (SIGUSR1), so "
            "the restarted memcached serves them again. A new pod (a rollout, a pod moved to "
            "another node) still starts empty. The file counts against the pod's memory. "
            "Needs /bin/sh and kill in the image, as the official one has.",
            default=False,
        ),
        "networkPolicy": netpol.schema(
            "A NetworkPolicy letting only these clients reach memcached's port (and nothing "
            "else reach the pods); without it any pod of the cluster can read, write and "
            "flush_all the cache."
        ),
        "sasl": crd.reference(
            "Clients must authenticate with SASL PLAIN (memcached -S: binary protocol only) "
            "as the user of this Secret's `username` and `password` keys (a "
            "kubernetes.io/basic-auth Secret); editing it rolls the pods. Needs an image whose "
            "memcached is built with --enable-sasl-pwdb and has /bin/sh, as the official "
            "one is.",
            "A Secret in the same namespace.",
            key="secretName",
        ),
        "metrics": monitoring.schema(
            "memcached_exporter",
            "MEMCACHED_EXPORTER_IMAGE",
            DEFAULT_EXPORTER_IMAGE,
            DEFAULT_METRICS_PORT,
        ),
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
        # with -e memcached preallocates a page for each slab class (39 MiB on 1.6.18)
        # and exits otherwise
        crd.Rule(
            "!self.warmRestart || self.memoryLimitMB >= 64",
            "warmRestart needs memoryLimitMB of at least 64: memcached preallocates its "
            "memory file's slab pages and refuses less",
            field=".warmRestart",
        ),
        crd.Rule(
            "!has(self.metrics) || self.metrics.port != self.port",
            "metrics.port must differ from port",
            field=".metrics.port",
        ),
        # memcached -S serves the binary protocol to authenticated clients only; the
        # exporter speaks the text protocol without credentials: it could never scrape.
        crd.Rule(
            "!has(self.sasl) || !has(self.metrics) || !self.metrics.enabled",
            "metrics.enabled cannot be combined with sasl: memcached_exporter speaks the "
            "text protocol, which memcached refuses under SASL",
            field=".metrics.enabled",
        ),
    ],
)

STATUS = crd.obj(
    "Observed state.",
    {
        "nodes": crd.array("Names of the memcached pods, sorted.", crd.string("A pod name.")),
        "replicas": crd.integer("Pods that exist and are not terminating (the scale status)."),
        "readyReplicas": crd.integer("Pods ready to serve."),
        "servers": crd.array(
            "With stableNames: host:port of every pod's stable DNS name, the server list "
            "for consistent-hashing clients.",
            crd.string("A server: <name>-<ordinal>.<name>.<namespace>.svc:<port>."),
        ),
    },
)

DEFINITION = crd.definition(
    KIND,
    description="A Memcached cluster: a Deployment (or a StatefulSet) of memcached pods behind "
    "a headless Service.",
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
