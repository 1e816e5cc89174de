"""The Memcached CRD (cache.minop.dev/v1alpha1)."""

from minop import crd
from minop.resource import Kind
from minop.workloads import scheduling_schema

KIND = Kind("cache.minop.dev", "v1alpha1", "Memcached", "memcacheds")
DEFAULT_IMAGE = "memcached:1.6.38"

SPEC = crd.obj(
    "Desired state of the Memcached cluster.",
    {
        "size": crd.integer("Number of memcached pods.", minimum=1, maximum=10, default=1),
        "image": crd.string(
            "Container image; default: the operator's MEMCACHED_IMAGE or " + DEFAULT_IMAGE + ".",
            min_length=1,
        ),
        "memoryLimitMB": crd.integer(
            "Memory for items per pod, in megabytes (memcached -m).", minimum=1, default=64
        ),
        "maxConnections": crd.integer(
            "Maximum simultaneous connections per pod (memcached -c).", minimum=1, default=1024
        ),
        "port": crd.integer(
            "TCP port memcached and the Service listen on.",
            minimum=1,
            maximum=65535,
            default=11211,
        ),
        "resources": crd.resources(),
        **scheduling_schema(),
    },
)

STATUS = crd.obj(
    "Observed state.",
    {
        "nodes": crd.array("Names of the memcached pods, sorted.", crd.string("A pod name.")),
        "readyReplicas": crd.integer("Pods ready to serve."),
        "selector": crd.string("Label selector of the pods (for the scale subresource)."),
        "observedGeneration": crd.integer("Generation last reconciled."),
        "conditions": crd.conditions(),
    },
)

DEFINITION = crd.definition(
    KIND,
    description="A Memcached cluster: a Deployment of memcached pods behind a Service.",
    spec=SPEC,
    status=STATUS,
    short_names=["mc"],
    columns=[
        crd.Column("Size", ".spec.size", "integer", "Desired pods."),
        crd.Column("Ready", ".status.readyReplicas", "integer", "Ready pods."),
    ],
    scale=crd.Scale(".spec.size", ".status.readyReplicas"),
)

EXAMPLE = {
    "apiVersion": "cache.minop.dev/v1alpha1",
    "kind": "Memcached",
    "metadata": {"name": "memcached-sample"},
    "spec": {"size": 3, "memoryLimitMB": 128, "maxConnections": 2048},
}
