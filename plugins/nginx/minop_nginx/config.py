"""nginx configuration: the pod's file layout, generated files, and the `nginx -t`
check the operator runs before rolling a configuration out."""

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

from minop.kit import localpod

log = logging.getLogger("minop.plugin.nginx")

# Where the pod finds things. The main file sits where the image's would, so relative
# includes in a user's block (`include fastcgi_params;`) resolve in /etc/nginx as usual.
CONF = "/etc/nginx/nginx.conf"  # key nginx.conf of our ConfigMap (a subPath mount)
CONF_DIR = "/etc/nginx/minop"  # our ConfigMap: server.conf
USER_DIR = "/etc/nginx/user"  # the user's configMapRef
TLS_DIR = "/etc/nginx/tls"  # the TLS Secret
# Volumes of the pod.
CONFIG_VOLUME, USER_VOLUME, TLS_VOLUME = "config", "user-config", "tls"
DEFAULT_PORT = 8080
DEFAULT_HEALTH = "/healthz"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def main_conf(spec: Mapping[str, Any]) -> str:
    """nginx.conf for a read-only root: pid and temp files under /tmp, logs to stdio."""
    include = f"{USER_DIR}/*.conf" if spec.get("configMapRef") else f"{CONF_DIR}/server.conf"
    temp = "\n".join(f"    {k}_temp_path /tmp/{k}_temp;" for k in TEMP_PATHS)
    return f"""worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 1024;
}}

http {{
    include mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    server_tokens off;
{temp}
    include {include};
}}
"""


def server_conf(spec: Mapping[str, Any]) -> str:
    """The user's server block, or a default one answering the health path."""
    if spec.get("config"):
        return str(spec["config"]).rstrip() + "\n"
    port = int(spec.get("port", DEFAULT_PORT))
    listen = f"listen {port};"
    if spec.get("tls"):
        listen = (
            f"listen {port} ssl;\n"
            f"    ssl_certificate {TLS_DIR}/tls.crt;\n"
            f"    ssl_certificate_key {TLS_DIR}/tls.key;"
        )
    health = spec.get("healthcheckPath", DEFAULT_HEALTH)
    return f"""server {{
    {listen}
    location = {health} {{
        access_log off;
        default_type text/plain;
        return 200 "ok\\n";
    }}
    location / {{
        root /usr/share/nginx/html;
        index index.html;
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


def check(pod: Mapping[str, Any], data: Mapping[str, str]) -> None:
    """Run ``nginx -t`` on the pod's own command line, with ``data`` (our ConfigMap)
    where the pod mounts it, as the pod's user when the operator runs as root.

    Raises InvalidConfig with nginx's own message. Skipped, with one warning,
    where nginx is not installed. Cached by content: each version is checked once.
    """
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
    container = pod["containers"][0]
    volumes = {CONFIG_VOLUME: data}
    if any(v["name"] == TLS_VOLUME for v in pod.get("volumes") or []):
        try:  # the Secret's data never reaches the operator: a throwaway pair stands in
            volumes[TLS_VOLUME] = dummy_tls()
        except (OSError, subprocess.SubprocessError):
            _warn_once("openssl failed or is missing: TLS configurations are not")
            return
    with tempfile.TemporaryDirectory(prefix="minop-nginx-") as tmp:
        paths = localpod.stage_mounts(pod, container, Path(tmp), volumes)
        conf_dir = Path(localpod.relocate(CONF, paths)).parent
        image_files(conf_dir)
        argv = localpod.container_argv(container, paths)
        as_pod = os.geteuid() == 0 and shutil.which("setpriv")
        cmd = [*(localpod.run_as(pod, container) if as_pod else []), binary, *argv[1:]]
        try:
            r = subprocess.run(
                [*cmd, "-t", "-q", "-p", f"{tmp}/"],
                stdout=subprocess.DEVNULL,  # `access_log /dev/stdout` reopens it
                stderr=subprocess.PIPE,
                text=True,
                timeout=30,
            )
        except subprocess.TimeoutExpired:  # e.g. slow DNS for an upstream: do not block
            log.warning("nginx -t timed out; configuration not checked")
            return
        back = {v: k for k, v in paths.items()} | {str(conf_dir): str(Path(CONF).parent)}
        message = localpod.relocate(r.stderr.strip(), back)
    if r.returncode == 0:
        return
    first = message.splitlines()[0] if message else f"nginx -t exited {r.returncode}"
    first = re.sub(r"^.*?\[(emerg|alert|crit|error)\] (\d+#\d+: )?", "", first)
    if "host not found" in first:
        # Names resolve in the pod's namespace, not the operator's: not ours to judge.
        log.info("nginx -t could not resolve a host (the pod may): %s", first)
        return
    raise InvalidConfig(first)


def image_files(conf_dir: Path) -> None:
    """The files the image ships beside nginx.conf (mime.types, fastcgi_params, ...),
    from the local nginx's /etc/nginx: relative includes resolve there."""
    local = Path("/etc/nginx")
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
