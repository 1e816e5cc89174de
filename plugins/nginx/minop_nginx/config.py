"""nginx configuration: generated files and the `nginx -t` check the operator runs."""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("minop.plugin.nginx")

CONF_DIR = "/etc/nginx/minop"  # our ConfigMap: nginx.conf and server.conf
USER_DIR = "/etc/nginx/user"  # the user's configMapRef
TLS_DIR = "/etc/nginx/tls"  # the TLS Secret


def main_conf(spec: Mapping[str, Any]) -> str:
    """nginx.conf for a read-only root: pid and temp files under /tmp, logs to stdio."""
    include = f"{USER_DIR}/*.conf" if spec.get("configMapRef") else f"{CONF_DIR}/server.conf"
    temp = "\n".join(
        f"    {k}_temp_path /tmp/{k}_temp;"
        for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes auto;
pid /tmp/nginx.pid;
error_log stderr warn;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
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
    port = int(spec.get("port", 8080))
    tls = ""
    listen = f"listen {port};"
    if spec.get("tls"):
        listen = f"listen {port} ssl;"
        tls = (
            f"\n    ssl_certificate {TLS_DIR}/tls.crt;\n    ssl_certificate_key {TLS_DIR}/tls.key;"
        )
    health = spec.get("healthcheckPath", "/healthz")
    return f"""server {{
    {listen}{tls}
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


@functools.lru_cache(maxsize=256)
def check(nginx_conf: str, server: str, tls: bool) -> None:
    """Run ``nginx -t`` on the files, as they would be laid out in the pod.

    Raises InvalidConfig with nginx's own message. Skipped (with one warning)
    where no nginx is installed. Cached by content: each version is checked once.
    """
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        _warn_once()
        return
    with tempfile.TemporaryDirectory(prefix="minop-nginx-") as tmp:
        root = Path(tmp)
        conf_dir = root / "conf"
        conf_dir.mkdir()
        swap = {CONF_DIR: str(conf_dir), "/tmp/": f"{tmp}/"}
        if tls:
            swap[TLS_DIR] = str(_dummy_tls(root))
        (conf_dir / "nginx.conf").write_text(relocate(nginx_conf, swap))
        (conf_dir / "server.conf").write_text(relocate(server, swap))
        r = subprocess.run(
            [binary, "-t", "-q", "-p", tmp, "-e", "stderr", "-c", str(conf_dir / "nginx.conf")],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if r.returncode != 0:
            msg = relocate(r.stderr.strip(), {v: k for k, v in swap.items()}).splitlines()[0]
            # drop nginx's "2026/01/01 00:00:00 [emerg] 1#1: " prefix
            raise InvalidConfig(re.sub(r"^.*?\[emerg\] (\d+#\d+: )?", "", msg))


def relocate(text: str, pairs: Mapping[str, str]) -> str:
    """Replace every key by its value in one pass (no value is replaced again)."""
    pattern = "|".join(re.escape(k) for k in sorted(pairs, key=len, reverse=True))
    return re.sub(pattern, lambda m: pairs[m.group(0)], text)


def _dummy_tls(root: Path) -> Path:
    """A throwaway self-signed pair: the real Secret's data never reaches the operator."""
    d = root / "tls"
    d.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=check",
            "-keyout",
            str(d / "tls.key"),
            "-out",
            str(d / "tls.crt"),
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return d


@functools.cache
def _warn_once() -> None:
    log.warning(
        "nginx is not installed where the operator runs: configs are not checked "
        "with nginx -t before rollout"
    )
