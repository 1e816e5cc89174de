"""The operator's own `nginx -t` on a tenant's configuration: no file of the operator
is read, nothing of the configuration is logged (real nginx, as the unit suite runs it)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from minop_nginx import children, config, paths

from minop.kit import workloads as wl

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="needs nginx (make unit)")
TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def check(spec: dict) -> None:
    data = config.files(spec)
    pod = children.deployment(wl.Instance("web", "ns", spec, {}, {}, "img"), data, "h")
    config.check(pod["spec"]["template"]["spec"], data)


def server(directives: str) -> dict:
    return {"config": f"server {{ listen 8080; {directives} }}"}


@pytest.fixture
def operator_file() -> Iterator[Path]:
    """A file of the operator's host, readable by nginx were it asked (its first word
    would be nginx's error, were it read), in no directory a pod mounts (/tmp, /run)."""
    home = Path(tempfile.mkdtemp(prefix="minop-operator-", dir="/srv"))
    try:
        home.chmod(0o755)
        secret = home / "token"
        secret.write_text("eyJhbGciOiJSUzI1NiJ9.operator-token;\n")
        secret.chmod(0o644)
        yield secret
    finally:
        shutil.rmtree(home)


@pytest.mark.parametrize(
    "directives",
    [
        f"include {TOKEN};",
        "include ../../var/run/secrets/kubernetes.io/serviceaccount/token;",
        f'ssl_certificate "{TOKEN}"; ssl_certificate_key {TOKEN};',
        f"location / {{ auth_basic on; auth_basic_user_file {TOKEN}; }}",
        f"access_log {TOKEN};",  # nginx -t opens (creates) log files
    ],
)
def test_the_operators_token_path_is_refused_naming_it(directives):
    with pytest.raises(paths.ForbiddenPath) as e:
        check(server(directives))
    assert "/var/run/secrets/kubernetes.io/serviceaccount/token" in str(e.value)
    assert e.value.file == "server.conf"


def test_a_file_of_the_operator_is_refused_without_being_read(operator_file, caplog):
    caplog.set_level(logging.DEBUG)
    for spec in (server(f"include {operator_file};"), {"mainSnippet": f"include {operator_file};"}):
        with pytest.raises(paths.ForbiddenPath) as e:
            check(spec)
        assert str(operator_file) in str(e.value)
        assert "operator-token" not in str(e.value) + caplog.text


@pytest.mark.parametrize(
    "directives",
    [
        "include fastcgi_params;",
        "include /etc/nginx/fastcgi_params;",
        "location / { include /etc/nginx/minop/*.conf; }",
        "access_log /dev/stdout; error_log stderr;",
        "location / { proxy_pass http://127.0.0.1:9; proxy_cache_key $host; }",
        'location / { root /usr/share/nginx/html; return 200 "/var/run/secrets"; }',
        "ssl_certificate $ssl_server_name.crt; ssl_certificate_key data:$key;",
        "# include /var/run/secrets/kubernetes.io/serviceaccount/token;\n",
    ],
)
def test_the_pods_and_the_images_files_pass(directives):
    check(server(directives))


def test_what_the_operator_cannot_judge_is_not_logged(caplog):
    """A directive another nginx may know passes to the pod's check; its words (a
    tenant's configuration may hold credentials) appear in no log."""
    caplog.set_level(logging.DEBUG)
    check(server("secret_header_Xy9w on;"))
    assert "secret_header_Xy9w" not in caplog.text
