"""The NginxServer CRD (web.minop.dev/v1alpha1)."""

from minop import crd
from minop.resource import Kind
from minop.workloads import scheduling_schema

KIND = Kind("web.minop.dev", "v1alpha1", "NginxServer", "nginxservers")
DEFAULT_IMAGE = "nginxinc/nginx-unprivileged:1.27"

SPEC = crd.obj(
    "Desired state of the NGINX server.",
    {
        "replicas": crd.integer("Number of nginx pods.", minimum=0, maximum=100, default=1),
        "image": crd.string(
            "Container image (must run nginx as non-root); default: the operator's "
            "NGINX_IMAGE or " + DEFAULT_IMAGE + ".",
            min_length=1,
        ),
        "port": crd.integer(
            "Port nginx and the Service listen on (>= 1024: unprivileged).",
            minimum=1024,
            maximum=65535,
            default=8080,
        ),
        "serviceType": crd.string(
            "Type of the Service.",
            enum=["ClusterIP", "NodePort", "LoadBalancer"],
            default="ClusterIP",
        ),
        "config": crd.string(
            "An nginx server block used instead of the default one; it must listen on "
            "`port` and serve `healthcheckPath`. Checked with `nginx -t` before rollout.",
            min_length=1,
            max_length=65536,
        ),
        "configMapRef": crd.obj(
            "A ConfigMap whose *.conf keys hold server blocks; editing it rolls the pods.",
            {"name": crd.object_name("Name of the ConfigMap.")},
            required=["name"],
        ),
        "tls": crd.obj(
            "Serve HTTPS on `port` with a kubernetes.io/tls Secret.",
            {"secretName": crd.object_name("Secret with tls.crt and tls.key.")},
            required=["secretName"],
        ),
        "healthcheckPath": crd.string(
            "Path the probes request; answered 200 by the default server block.",
            pattern=r"^/[^\s;{}]*$",
            default="/healthz",
            max_length=256,
        ),
        "resources": crd.resources(),
        **scheduling_schema(),
    },
    rules=[
        crd.Rule(
            "!(has(self.config) && has(self.configMapRef))",
            "config and configMapRef are mutually exclusive",
            field=".configMapRef",
        )
    ],
)

STATUS = crd.obj(
    "Observed state.",
    {
        "availableReplicas": crd.integer("Pods ready to serve."),
        "podNames": crd.array("Names of the nginx pods, sorted.", crd.string("A pod name.")),
        "selector": crd.string("Label selector of the pods (for the scale subresource)."),
        "observedGeneration": crd.integer("Generation last reconciled."),
        "conditions": crd.conditions(),
    },
)

DEFINITION = crd.definition(
    KIND,
    description="An NGINX web server: a Deployment of unprivileged nginx pods, a Service and "
    "the configuration.",
    spec=SPEC,
    status=STATUS,
    short_names=["ngx"],
    columns=[
        crd.Column("Replicas", ".spec.replicas", "integer", "Desired pods."),
        crd.Column("Available", ".status.availableReplicas", "integer", "Ready pods."),
    ],
    scale=crd.Scale(".spec.replicas", ".status.availableReplicas"),
)

EXAMPLE = {
    "apiVersion": "web.minop.dev/v1alpha1",
    "kind": "NginxServer",
    "metadata": {"name": "nginx-sample"},
    "spec": {"replicas": 2, "port": 8080, "healthcheckPath": "/healthz"},
}
