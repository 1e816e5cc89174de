"""nginx configuration: the pod's file layout, generated files, and the `nginx -t`
check the operator runs before rolling a configuration out.

The operator's nginx is not the pod's: it judges what every nginx judges alike
(syntax, includes, file paths) and leaves the rest (directives, parameters,
modules an older or newer nginx lacks) to the pod's own `nginx -t`, which runs
as an init container before each new pod serves (children.check_container)."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minop.kit import localpod, sandbox
from minop.kit import workloads as wl
from minop_nginx import paths

log = logging.getLogger("minop.plugin.nginx")

# Where the pod finds things. The main file sits where the image's would, so relative
# includes in a user's block (`include fastcgi_params;`) resolve in /etc/nginx as usual.
CONF = "/etc/nginx/nginx.conf"  # key nginx.conf of our ConfigMap (a subPath mount)
CONF_DIR = "/etc/nginx/minop"  # our ConfigMap: server.conf
USER_DIR = "/etc/nginx/user"  # the user's configMapRef
TLS_DIR = "/etc/nginx/tls"  # the TLS Secret
CERTS_DIR = "/etc/nginx/certs"  # spec.certificates: <secretName>/tls.crt, tls.key
EXTRA_DIR = "/etc/nginx/extra"  # spec.extraVolumes: <name>/<key>
CONTENT_DIR = "/usr/share/nginx/html"  # spec.content, the default server's root
# Volumes of the pod.
CONFIG_VOLUME, USER_VOLUME, TLS_VOLUME, CONTENT_VOLUME = "config", "user-config", "tls", "content"
CERT_VOLUME, EXTRA_VOLUME = "cert-", "extra-"  # prefixes: cert-<index>, extra-<name>
DEFAULT_PORT = 8080
DEFAULT_HEALTH = "/healthz"
DEFAULT_STATUS_PORT = 8081
DEFAULT_CONNECTIONS = 1024
DEFAULT_SHUTDOWN = 30  # seconds a graceful stop waits for open requests (worker_shutdown_timeout)
DEFAULT_DRAIN = 10
LIVENESS_PATH = "/livez"  # on the status port
STUB_STATUS = "/stub_status"  # on the status port, from the pod itself only
PID = "/tmp/nginx.pid"
CHECK_TIMEOUT = 10  # seconds: nginx -t reads local files only, it never waits on a network
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def worker_processes(spec: Mapping[str, Any]) -> str:
    """``workerProcesses``, else one per CPU of the pod's limit (else request); `auto`
    (the node's CPUs) only for a pod without either."""
    n = spec.get("workerProcesses") or wl.cpu_count(spec)
    return str(n) if n else "auto"


def main_conf(spec: Mapping[str, Any]) -> str:
    """nginx.conf for a read-only root: pid and temp files under /tmp, logs to stdio,
    and a status server on its own port (liveness, stub_status) that no user block
    touches: an upstream outage behind the user's health path never restarts pods."""
    include = f"{USER_DIR}/*.conf" if spec.get("configMapRef") else f"{CONF_DIR}/server.conf"
    temp = "\n".join(f"    {k}_temp_path /tmp/{k}_temp;" for k in TEMP_PATHS)
    # first: load_module must precede every block
    main = _snippet(spec.get("mainSnippet"), "")
    events = _snippet(spec.get("eventsSnippet"), "    ")
    return f"""{main}worker_processes {worker_processes(spec)};
worker_shutdown_timeout {int(spec.get("shutdownTimeoutSeconds", DEFAULT_SHUTDOWN))}s;
pid {PID};
error_log stderr warn;

events {{
    worker_connections {int(spec.get("workerConnections", DEFAULT_CONNECTIONS))};
{events}}}

http {{
    include mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    server_tokens off;
{temp}
    server {{
        listen {status_port(spec)};
        access_log off;
        location = {LIVENESS_PATH} {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
        location = {STUB_STATUS} {{
            stub_status;
            allow 127.0.0.1;
            deny all;
        }}
        location / {{
            return 404;
        }}
    }}
{redirect_conf(spec)}    include {include};
}}
"""


def _snippet(text: str | None, indent: str) -> str:
    if not text:
        return ""
    return "".join(f"{indent}{line}\n" for line in str(text).rstrip().splitlines())


def status_port(spec: Mapping[str, Any]) -> int:
    return int(spec.get("statusPort", DEFAULT_STATUS_PORT))


def server_conf(spec: Mapping[str, Any]) -> str:
    """The user's server blocks, or the default one answering the health path (over
    TLS: one more per certificate, for its names)."""
    if spec.get("config"):
        return str(spec["config"]).rstrip() + "\n"
    if not spec.get("tls"):
        return _server(spec, "")
    blocks = [_server(spec, _certificate(TLS_DIR))]
    for cert in spec.get("certificates") or []:
        names = " ".join(cert["serverNames"])
        tls = _certificate(f"{CERTS_DIR}/{cert['secretName']}")
        blocks.append(_server(spec, f"    server_name {names};\n{tls}"))
    return "\n".join(blocks)


def _certificate(directory: str) -> str:
    return (
        f"    ssl_certificate {directory}/tls.crt;\n    ssl_certificate_key {directory}/tls.key;\n"
    )


def _server(spec: Mapping[str, Any], tls: str) -> str:
    port = int(spec.get("port", DEFAULT_PORT))
    health = spec.get("healthcheckPath", DEFAULT_HEALTH)
    return f"""server {{
    listen {port}{" ssl" if tls else ""};
{tls}    location = {health} {{
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }}
    location / {{
        root {CONTENT_DIR};
        index index.html;
    }}
}}
"""


def redirect_conf(spec: Mapping[str, Any]) -> str:
    """A plain-HTTP server redirecting every request to HTTPS on the Service's port."""
    if not spec.get("httpRedirectPort"):
        return ""
    https = int((spec.get("service") or {}).get("port") or 443)
    host = "$host" if https == 443 else f"$host:{https}"
    return f"""    server {{
        listen {int(spec["httpRedirectPort"])} default_server;
        location / {{
            return 301 https://{host}$request_uri;
        }}
    }}
"""


def files(spec: Mapping[str, Any]) -> dict[str, str]:
    """The operator's ConfigMap data."""
    out = {"nginx.conf": main_conf(spec)}
    if not spec.get("configMapRef"):
        out["server.conf"] = server_conf(spec)
    return out


class InvalidConfig(ValueError):
    pass


# nginx errors the operator's nginx cannot judge for the pod's. Another version or build
# knows other directives, parameters, values and variables, and allows directives in
# other places (`http2 on;` is unknown before 1.25.1); host names resolve in the pod's
# namespace; a port may be in use on the operator's host, never in a new pod.
NOT_DECIDABLE = re.compile(
    r"unknown directive|invalid parameter|invalid value|invalid number of arguments"
    r'|unknown "[^"]*" variable|is not allowed here|host not found|bind\(\) to \S+ failed'
)
# A file of the TLS Secret named in the configuration: `ssl_client_certificate
# /etc/nginx/tls/ca.crt;`. Group 1 is the directive, group 2 the Secret's key.
_TLS_FILE = re.compile(rf"""(\w+)\s+["']?{re.escape(TLS_DIR)}/([^\s;"'/]+)""")


def first_error(output: str) -> str:
    """nginx's first error in its output (of `nginx -t`, or a pod's termination
    message), without the time stamp and pid: `unknown directive "x" in /etc/...:3`."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    line = next((x for x in lines if re.search(r"\[(emerg|alert|crit|error)\]", x)), "")
    line = line or (lines[0] if lines else "")
    return re.sub(r"^.*?\[(emerg|alert|crit|error)\] (\d+#\d+: )?", "", line)


def check(pod: Mapping[str, Any], data: Mapping[str, str]) -> None:
    """Judge ``data`` (our ConfigMap) as the pod's nginx would, in two steps.

    First every file it names must be one of the pod's (``paths.check``): a tenant's
    configuration never makes the operator open its own files. Then ``nginx -t`` on the
    pod's own command line, with the files where the pod mounts them, as the pod's user
    when the operator runs as root, confined by the kernel (``minop.kit.sandbox``: no
    file outside that copy and the system's libraries, no network, so no DNS, a time
    bound); not run at all where the kernel cannot confine it.

    Raises paths.ForbiddenPath, or InvalidConfig with nginx's own message for what any nginx
    refuses alike; anything in ``NOT_DECIDABLE``, or about a file of the TLS Secret (the
    operator holds stand-ins, never its data), is left to the pod's own check. Nothing
    of the configuration is logged. Cached by content.
    """
    paths.check(data, pod["containers"][0].get("volumeMounts") or [])
    _check(json.dumps({"pod": pod, "data": data}, sort_keys=True))


@functools.lru_cache(maxsize=256)
def _check(blob: str) -> None:
    args = json.loads(blob)
    pod, data = args["pod"], args["data"]
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        _warn_once("nginx is not installed where the operator runs: configurations are not")
        return
    if not sandbox.available():
        _warn_once(
            "the kernel cannot confine nginx here (Landlock, seccomp): configurations are not"
        )
        return
    # the pod's own check (its init container): nginx -t with the server's mounts and user
    [container] = pod["initContainers"]
    volumes = {CONFIG_VOLUME: data}
    if any(v["name"] == TLS_VOLUME for v in pod.get("volumes") or []):
        try:  # the Secret's data never reaches the operator: throwaway files stand in
            volumes[TLS_VOLUME] = tls_stand_ins(data)
            for v in pod.get("volumes") or []:
                if v["name"].startswith(CERT_VOLUME):
                    volumes[v["name"]] = dummy_tls()
        except (OSError, subprocess.SubprocessError):
            _warn_once("openssl failed or is missing: TLS configurations are not")
            return
    with tempfile.TemporaryDirectory(prefix="minop-nginx-") as tmp:
        staged = localpod.stage_mounts(pod, container, Path(tmp), volumes)
        conf_dir = Path(localpod.relocate(CONF, staged)).parent
        image_files(conf_dir)
        argv = localpod.container_argv(container, staged)
        as_pod = os.geteuid() == 0 and shutil.which("setpriv")
        cmd = [*(localpod.run_as(pod, container) if as_pod else []), binary, *argv[1:]]
        try:
            r = sandbox.run(
                [*cmd, "-p", f"{tmp}/"],
                read=[tmp, str(Path(binary).resolve().parent), "/etc/nginx"],
                write=[tmp, "/dev/null"],  # access_log /dev/stdout is our stdout: /dev/null
                timeout=CHECK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            log.warning("nginx -t took over %s s; configuration not checked", CHECK_TIMEOUT)
            return
        back = {v: k for k, v in staged.items()} | {str(conf_dir): str(Path(CONF).parent)}
        message = localpod.relocate(r.stderr.strip(), back)
    if r.returncode == 0:
        return
    first = first_error(message) or f"nginx -t exited {r.returncode}"
    if NOT_DECIDABLE.search(first) or any(f"{d}/" in first for d in (TLS_DIR, EXTRA_DIR)):
        log.info("nginx -t here cannot judge a configuration; the pod's own check will")
        return
    raise InvalidConfig(first)


def tls_stand_ins(data: Mapping[str, str]) -> dict[str, str]:
    """A throwaway file for tls.crt, tls.key and every other key of the TLS Secret the
    configuration names (e.g. ca.crt for mTLS): the key for `*_key` directives, else
    the certificate."""
    pair = dummy_tls()
    out = dict(pair)
    for text in data.values():
        for directive, key in _TLS_FILE.findall(text):
            out.setdefault(key, pair["tls.key" if directive.endswith("_key") else "tls.crt"])
    return out


def image_files(conf_dir: Path, local: Path = Path("/etc/nginx")) -> None:
    """The files the image ships beside nginx.conf (mime.types, fastcgi_params, ...),
    from a local nginx's ``local`` directory: relative includes resolve there."""
    if not local.is_dir():
        return
    for f in local.iterdir():
        if f.is_file() and not (conf_dir / f.name).exists():
            shutil.copyfile(f, conf_dir / f.name)
            (conf_dir / f.name).chmod(0o644)


@functools.cache
def dummy_tls() -> dict[str, str]:
    """A throwaway self-signed pair (EC: fast), made once per process."""
    with tempfile.TemporaryDirectory(prefix="minop-nginx-tls-") as tmp:
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec",
                "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                "-subj", "/CN=minop-check",
                "-keyout", f"{tmp}/tls.key", "-out", f"{tmp}/tls.crt",
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )  # fmt: skip
        return {k: Path(tmp, k).read_text() for k in ("tls.crt", "tls.key")}


@functools.cache
def _warn_once(what: str) -> None:
    log.warning("%s checked with nginx -t before rollout", what)
