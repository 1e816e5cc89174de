"""Several certificates by server name, the HTTP to HTTPS redirect and extra volumes,
served by Debian's nginx with the pod's command line and files as user 101."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl

from minop_nginx import config
from nginx_builds import check, http_probe, needs_nginx

from minop.kit.testing import free_port, tls_secret_data

pytestmark = needs_nginx


def served_certificate(port: int, name: str) -> bytes:
    """The certificate (DER) nginx presents to a client asking for ``name`` (SNI)."""
    ctx = ssl._create_unverified_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def test_each_server_name_gets_its_certificate_and_any_other_the_default(serve):
    main, shop = tls_secret_data("main.example"), tls_secret_data("shop.example")
    port = free_port()
    spec = {
        "port": port,
        "tls": {"secretName": "main"},
        "certificates": [{"secretName": "shop", "serverNames": ["shop.example", "*.shop.example"]}],
    }
    check(spec)  # the operator's nginx -t, with stand-ins for both Secrets
    volumes = {config.TLS_VOLUME: main, f"{config.CERT_VOLUME}0": shop}
    c, *_ = serve(spec, volumes=volumes)
    assert http_probe(c, "readinessProbe") == (200, b"ok\n")
    assert served_certificate(port, "shop.example") == der(shop["tls.crt"])
    assert served_certificate(port, "www.shop.example") == der(shop["tls.crt"])
    assert served_certificate(port, "other.example") == der(main["tls.crt"])


def test_plain_http_is_redirected_to_https(serve):
    port, redirect = free_port(), free_port()
    spec = {"port": port, "tls": {"secretName": "c"}, "httpRedirectPort": redirect}
    check(spec)
    serve(spec)
    conn = http.client.HTTPConnection("127.0.0.1", redirect, timeout=5)
    conn.request("GET", "/a/b?c=d", headers={"Host": "site.example"})
    r = conn.getresponse()
    assert (r.status, r.getheader("Location")) == (301, "https://site.example/a/b?c=d")


def test_an_htpasswd_file_from_an_extra_volume_guards_a_location(serve):
    port = free_port()
    block = (
        f"server {{ listen {port};\n"
        '  location = /healthz { default_type text/plain; return 200 "ok\\n"; }\n'
        '  location / { auth_basic "minop"; '
        # past the check, a file that is not there (`return` would act before it)
        "auth_basic_user_file /etc/nginx/extra/users/htpasswd; root /tmp; } }"
    )
    spec = {
        "port": port,
        "config": block,
        "extraVolumes": [{"name": "users", "secret": {"secretName": "users"}}],
    }
    check(spec)  # the Secret's data never reaches the operator: the pod judges the file
    volumes = {f"{config.EXTRA_VOLUME}users": {"htpasswd": "alice:{PLAIN}wonder\n"}}
    serve(spec, volumes=volumes)

    def get(auth: str | None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/missing", headers={"Authorization": auth} if auth else {})
        return conn.getresponse().status

    basic = base64.b64encode(b"alice:wonder").decode()
    assert get(None) == 401
    assert get("Basic " + base64.b64encode(b"alice:wrong").decode()) == 401
    assert get("Basic " + basic) == 404
