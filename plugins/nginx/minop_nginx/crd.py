"""The NginxServer CRD (web.minop.dev/v1alpha1)."""

from minop import Kind
from minop.kit import crd, monitoring
from minop.kit.workloads import drain_schema, scheduling_schema
from minop_nginx.config import (
    DEFAULT_CONNECTIONS,
    DEFAULT_DRAIN,
    DEFAULT_HEALTH,
    DEFAULT_PORT,
    DEFAULT_SHUTDOWN,
    DEFAULT_STATUS_PORT,
)

KIND = Kind("web.minop.dev", "v1alpha1", "NginxServer", "nginxservers")
DEFAULT_IMAGE = "nginxinc/nginx-unprivileged:1.27"
DEFAULT_EXPORTER_IMAGE = "nginx/nginx-prometheus-exporter:1.4.0"
DEFAULT_METRICS_PORT = 9113
SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer"]
HOST_NAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

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
        "certificates": crd.array(
            "More certificates, chosen by the server name a client asks for (SNI); `tls` "
            "stays the certificate for every other name. Each kubernetes.io/tls Secret is "
            "mounted at /etc/nginx/certs/<secretName>/; the default server block serves each "
            "entry's names with its certificate (a `config` names the files itself).",
            crd.obj(
                "A certificate and the names it serves.",
                {
                    "secretName": crd.object_name(
                        "A kubernetes.io/tls Secret with tls.crt and tls.key, in the same "
                        "namespace."
                    ),
                    "serverNames": crd.array(
                        "Names served with it (server_name): host names or *.wildcards.",
                        crd.string("A host name.", pattern=HOST_NAME, max_length=253),
                        max_items=32,
                    ),
                },
                required=["secretName", "serverNames"],
                rules=[
                    crd.Rule(
                        "self.serverNames.size() > 0",
                        "serverNames needs at least one name",
                        field=".serverNames",
                    )
                ],
            ),
            max_items=16,
        ),
        "httpRedirectPort": crd.integer(
            "With `tls`: nginx also listens on this port for plain HTTP and answers every "
            "request with a permanent redirect (301) to the same URL over HTTPS; the Service "
            "maps port 80 to it.",
            minimum=1024,
            maximum=65535,
        ),
        "extraVolumes": crd.array(
            "More files for the configuration, mounted read-only at "
            "/etc/nginx/extra/<name>/ (one file per key): htpasswd files for "
            "auth_basic_user_file, njs scripts for js_path/js_import, includes. Editing "
            "them rolls the pods.",
            crd.obj(
                "A ConfigMap or a Secret, exactly one.",
                {
                    "name": crd.string(
                        "Name of the directory under /etc/nginx/extra/.",
                        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                        max_length=40,
                    ),
                    "configMap": crd.reference(
                        "A ConfigMap in the same namespace.", "Name of the ConfigMap."
                    ),
                    "secret": crd.reference(
                        "A Secret in the same namespace.", "Name of the Secret.", key="secretName"
                    ),
                },
                required=["name"],
                rules=[
                    crd.Rule(
                        "has(self.configMap) != has(self.secret)",
                        "an extra volume needs exactly one of configMap and secret",
                    )
                ],
            ),
            max_items=16,
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
            "Path the readiness probe requests (a failing one takes the pod out of the "
            "Service; liveness asks nginx's own status server); the default server block "
            "answers it with 200.",
            pattern=r"^/[A-Za-z0-9._~!&()*+,=:@%/-]*$",
            default=DEFAULT_HEALTH,
            max_length=256,
        ),
        "statusPort": crd.integer(
            "Port of nginx's own status server: the liveness probe (/livez, answered by "
            "nginx itself, never by an upstream) and stub_status (/stub_status, from the pod "
            "only). Must differ from `port`, and no user block may listen on it.",
            minimum=1024,
            maximum=65535,
            default=DEFAULT_STATUS_PORT,
        ),
        "metrics": monitoring.schema(
            "nginx-prometheus-exporter (reading stub_status)",
            "NGINX_EXPORTER_IMAGE",
            DEFAULT_EXPORTER_IMAGE,
            DEFAULT_METRICS_PORT,
        ),
        "drainSeconds": drain_schema(DEFAULT_DRAIN),
        "shutdownTimeoutSeconds": crd.integer(
            "Seconds a stopping nginx lets open requests finish (graceful stop on SIGQUIT, "
            "worker_shutdown_timeout) before it closes them; the pod's grace period is "
            "drainSeconds + shutdownTimeoutSeconds + 5.",
            minimum=1,
            maximum=3600,
            default=DEFAULT_SHUTDOWN,
        ),
        "workerProcesses": crd.integer(
            "nginx worker processes; default: one per CPU of resources.limits.cpu (else "
            "requests.cpu, rounded up), `auto` (the node's CPUs) without either.",
            minimum=1,
            maximum=256,
        ),
        "workerConnections": crd.integer(
            "Connections each worker may open (worker_connections), clients and upstreams "
            "together.",
            minimum=16,
            maximum=1048576,
            default=DEFAULT_CONNECTIONS,
        ),
        "mainSnippet": crd.string(
            "Directives for the main context, placed first in nginx.conf (load_module, "
            "env, stream { ... }, thread_pool, ...). Checked like `config`.",
            min_length=1,
            max_length=16384,
        ),
        "eventsSnippet": crd.string(
            "Directives for the events block (multi_accept, use, ...); worker_connections "
            "has its own field.",
            min_length=1,
            max_length=4096,
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
            f"!has(self.config) || !{_LISTENS}.exists(l, {_IS_LISTEN} && "
            f"{_PORT_OF} == self.statusPort)",
            "config must not listen on spec.statusPort (default 8081): nginx's own status "
            "server answers the liveness probe there",
            field=".config",
        ),
        crd.Rule(
            "!has(self.certificates) || has(self.tls)",
            "certificates needs tls (the certificate for every other name)",
            field=".certificates",
        ),
        crd.Rule(
            "!has(self.httpRedirectPort) || has(self.tls)",
            "httpRedirectPort needs tls: it redirects to HTTPS",
            field=".httpRedirectPort",
        ),
        crd.Rule(
            "!has(self.httpRedirectPort) || "
            "(self.httpRedirectPort != self.port && self.httpRedirectPort != self.statusPort)",
            "httpRedirectPort must differ from port and statusPort",
            field=".httpRedirectPort",
        ),
        crd.Rule(
            "!has(self.httpRedirectPort) || !has(self.service) || !has(self.service.port) || "
            "self.service.port != 80",
            "with httpRedirectPort the Service's port 80 redirects: service.port must not be 80",
            field=".service.port",
        ),
        crd.Rule(
            "!has(self.extraVolumes) || "
            "self.extraVolumes.all(v, self.extraVolumes.exists_one(w, w.name == v.name))",
            "extraVolumes names must be unique",
            field=".extraVolumes",
        ),
        crd.Rule(
            "!has(self.metrics) || (self.metrics.port != self.port && "
            "self.metrics.port != self.statusPort && "
            "(!has(self.httpRedirectPort) || self.metrics.port != self.httpRedirectPort))",
            "metrics.port must differ from port, statusPort and httpRedirectPort",
            field=".metrics.port",
        ),
        crd.Rule(
            "self.statusPort != self.port",
            "statusPort must differ from port",
            field=".statusPort",
        ),
        crd.Rule(
            "!has(self.eventsSnippet) || !self.eventsSnippet.contains('worker_connections')",
            "set worker_connections with workerConnections, not in eventsSnippet",
            field=".eventsSnippet",
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
