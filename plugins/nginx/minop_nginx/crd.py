"""The NginxServer CRD (web.minop.dev/v1alpha1)."""

from minop import Kind
from minop.kit import crd
from minop.kit.workloads import scheduling_schema
from minop_nginx.config import DEFAULT_HEALTH, DEFAULT_PORT

KIND = Kind("web.minop.dev", "v1alpha1", "NginxServer", "nginxservers")
DEFAULT_IMAGE = "nginxinc/nginx-unprivileged:1.27"
SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer"]

# `listen` directives of the inline config, e.g. "listen 8080", "listen [::]:8443 ssl",
# and comments: a comment is matched whole, so a `listen` inside it is never one.
_LISTENS = "self.config.findAll('#[^\\\\n]*|\\\\blisten\\\\s+(\\\\S*:)?[0-9]+[^;#]*')"
_IS_LISTEN = "l.startsWith('listen')"
_PORT_OF = "int(l.find('^listen\\\\s+(\\\\S*:)?[0-9]+').find('[0-9]+$'))"

SPEC = crd.obj(
    "Desired state of the NGINX server.",
    {
        "replicas": crd.integer("Number of nginx pods.", minimum=0, maximum=100, default=1),
        "image": crd.string(
            "Container image (must run nginx as a non-root user); default: the operator's "
            "NGINX_IMAGE or " + DEFAULT_IMAGE + ".",
            min_length=1,
            max_length=512,
        ),
        "port": crd.integer(
            "Port nginx listens on in the pod (the Service maps service.port to it); at least "
            "1024, as nginx runs unprivileged.",
            minimum=1024,
            maximum=65535,
            default=DEFAULT_PORT,
        ),
        "serviceType": crd.string(
            "Deprecated: use service.type. Type of the Service.", enum=SERVICE_TYPES
        ),
        "service": crd.obj(
            "The Service in front of the pods.",
            {
                "type": crd.string("Type of the Service (default ClusterIP).", enum=SERVICE_TYPES),
                "port": crd.integer(
                    "Port of the Service, mapped to the container's `port`; default 80, "
                    "443 with `tls`.",
                    minimum=1,
                    maximum=65535,
                ),
                "annotations": crd.string_map(
                    "Annotations of the Service, e.g. for a cloud load balancer."
                ),
            },
        ),
        "config": crd.string(
            "nginx configuration for the http block (one or more server blocks) used instead "
            "of the default one; it must listen on `port` (with `ssl` when `tls` is set) and "
            "answer `healthcheckPath`. Checked with `nginx -t` before rollout, and by each new "
            "pod's own nginx before it serves.",
            min_length=1,
            max_length=65536,
        ),
        "configMapRef": crd.reference(
            "A ConfigMap whose *.conf keys hold the http-block configuration (server blocks), "
            "in place of `config`; editing it rolls the pods. Not checked with `nginx -t`.",
            "Name of the ConfigMap, in the same namespace.",
        ),
        "tls": crd.reference(
            "Serve HTTPS on `port` with a kubernetes.io/tls Secret, every key mounted at "
            "/etc/nginx/tls (tls.crt, tls.key, ca.crt for ssl_client_certificate, ...); editing "
            "the Secret rolls the pods.",
            "Secret with tls.crt and tls.key.",
            key="secretName",
        ),
        "content": crd.obj(
            "Static content served from /usr/share/nginx/html (the default server block's "
            "root), read-only: a ConfigMap or a PersistentVolumeClaim, exactly one.",
            {
                "configMapRef": crd.reference(
                    "A ConfigMap whose keys are the files; editing it rolls the pods.",
                    "Name of the ConfigMap, in the same namespace.",
                ),
                "persistentVolumeClaim": crd.reference(
                    "A PersistentVolumeClaim holding the files, mounted read-only (with "
                    "more than one replica, its access mode must allow several nodes).",
                    "Name of the claim, in the same namespace.",
                    key="claimName",
                ),
            },
            rules=[
                crd.Rule(
                    "has(self.configMapRef) != has(self.persistentVolumeClaim)",
                    "content needs exactly one of configMapRef and persistentVolumeClaim",
                )
            ],
        ),
        "healthcheckPath": crd.string(
            "Path the readiness and liveness probes request; the default server block answers "
            "it with 200.",
            pattern=r"^/[A-Za-z0-9._~!&()*+,=:@%/-]*$",
            default=DEFAULT_HEALTH,
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
        ),
        # The Service and the probes use `port`: a block listening elsewhere never serves.
        crd.Rule(
            f"!has(self.config) || {_LISTENS}.exists(l, {_IS_LISTEN} && {_PORT_OF} == self.port)",
            "config must contain a listen directive for spec.port (default 8080)",
            field=".config",
        ),
        crd.Rule(
            f"!has(self.config) || !has(self.tls) || "
            f"{_LISTENS}.exists(l, {_IS_LISTEN} && {_PORT_OF} == self.port && "
            "l.matches('\\\\sssl(\\\\s|$)'))",
            "with tls, config must listen on spec.port with ssl (the probes use HTTPS)",
            field=".config",
        ),
        crd.Rule(
            "!has(self.serviceType) || !has(self.service) || !has(self.service.type)",
            "serviceType is deprecated: set service.type only",
            field=".serviceType",
        ),
    ],
)

STATUS = crd.obj(
    "Observed state.",
    {
        "availableReplicas": crd.integer("Pods ready to serve."),
        "replicas": crd.integer("Pods that exist and are not terminating (the scale status)."),
        "podNames": crd.array("Names of the nginx pods, sorted.", crd.string("A pod name.")),
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
    scale=crd.Scale(".spec.replicas"),
)

EXAMPLE = {
    "apiVersion": "web.minop.dev/v1alpha1",
    "kind": "NginxServer",
    "metadata": {"name": "nginx-sample"},
    "spec": {"replicas": 2, "port": 8080, "healthcheckPath": "/healthz"},
}
