"""minop.transport against a real HTTPS server in the test: kept connections (counted at
the server), connections the server drops, TLS from the kubeconfig (CA, client
certificate, server name), credentials, the pool's bound, and the fallback to requests."""

import base64
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from minop.apierrors import ApiError, NotFound
from minop.kinds import CONFIGMAP
from minop.kit.testing import tls_secret_data
from minop.kube import Kube
from minop.metrics import Metrics


@pytest.fixture(scope="module")
def tls():
    return tls_secret_data("api", hosts=("127.0.0.1", "api.example"))


@pytest.fixture(scope="module")
def other_tls():
    return tls_secret_data("stranger")


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Server:
    """HTTPS (or plain HTTP) with keep-alive; counts connections and requests, and can
    drop a connection: the idle ones, or the next one a request arrives on, unanswered."""

    def __init__(self, tmp_path, tls=None, client_ca=None):
        self.connections, self.requests, self.peers = 0, [], []
        self.inflight = self.max_inflight = 0
        self.barrier = None  # the first requests (its parties) wait here for each other
        self.arrivals = 0
        self.drop_next = False
        self.open: dict[int, socket.socket] = {}
        self.closed = threading.Semaphore(0)  # released as each connection's handler ends
        self.release = threading.Event()  # a request to /hang waits for it
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as the API server: no delayed-ACK stalls

            def setup(self):
                super().setup()
                with server.lock:
                    server.connections += 1
                    server.open[id(self)] = self.connection
                    if isinstance(self.connection, ssl.SSLSocket):
                        server.peers.append(self.connection.getpeercert())

            def finish(self):
                with server.lock:
                    server.open.pop(id(self), None)
                try:
                    super().finish()
                finally:
                    server.closed.release()

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.requests.append((self.command, self.path, dict(self.headers), body))
                    if server.drop_next:
                        server.drop_next = False
                        self.close_connection = True
                        return  # no answer: the connection just closes
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    barrier = server.barrier
                    if barrier is not None and server.arrivals >= barrier.parties:
                        barrier = None
                    server.arrivals += 1
                try:
                    if barrier is not None:
                        barrier.wait(10)
                    if self.path.startswith("/hang"):
                        server.release.wait(30)
                    code, payload = (404, {"kind": "Status", "reason": "NotFound",
                                           "message": "gone"}) if "missing" in self.path else (
                        200, {"path": self.path})  # fmt: skip
                    data = json.dumps(payload).encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with server.lock:
                        server.inflight -= 1

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            for name in ("tls.crt", "tls.key"):
                (tmp_path / f"server-{name}").write_text(tls[name])
            ctx.load_cert_chain(tmp_path / "server-tls.crt", tmp_path / "server-tls.key")
            if client_ca is not None:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cadata=client_ca)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def kube(self, cluster=None, user=None, **kw):
        doc = {
            "clusters": [{"name": "c", "cluster": {"server": self.url, **(cluster or {})}}],
            "users": [{"name": "u", "user": user or {}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
        return Kube(doc, agent="minop/test", **{"qps": 0, "retries": 1, "timeout": 10, **kw})

    def drop_idle(self):
        """Close every connection the server holds open; return once their handlers ended."""
        with self.lock:
            socks = list(self.open.values())
        for sock in socks:
            sock.shutdown(socket.SHUT_RDWR)
        for _ in socks:
            assert self.closed.acquire(timeout=10)

    def stop(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(tmp_path):
    made = []

    def make(**kw):
        s = Server(tmp_path, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_many_requests_share_one_kept_connection(serve, tls):
    s = serve(tls=tls)
    kube = s.kube({"certificate-authority-data": b64(tls["ca.crt"])})
    assert kube.transport == "http.client"
    for i in range(20):
        assert (
            kube.get(CONFIGMAP, f"x{i}", "ns")["path"] == f"/api/v1/namespaces/ns/configmaps/x{i}"
        )
    kube.patch(CONFIGMAP, "x", {"data": {"a": "b"}}, "ns")
    with pytest.raises(NotFound):  # an error's answer is read whole: the connection stays
        kube.get(CONFIGMAP, "missing", "ns")
    assert len(s.requests) == 22 and s.connections == 1
    method, _, headers, body = s.requests[20]
    assert (method, json.loads(body)) == ("PATCH", {"data": {"a": "b"}})
    assert headers["Content-Type"] == "application/merge-patch+json"
    assert headers["User-Agent"] == "minop/test"
    assert kube.metrics.rest_requests.value(code="200", method="GET", host=kube.host) == 20
    assert f'minop_rest_transport{{host="{kube.host}",transport="http.client"}} 1' in (
        kube.metrics.render()
    )


def test_query_parameters_are_encoded(serve):
    s = serve()
    kube = s.kube()
    kube.list(CONFIGMAP, "ns", label_selector="a=b,c in (d)")
    kube.patch(CONFIGMAP, "x", {}, "ns", params={"dryRun": None, "fieldManager": "m"})
    assert [p for _, p, _, _ in s.requests] == [
        "/api/v1/namespaces/ns/configmaps?limit=500&labelSelector=a%3Db%2Cc+in+%28d%29",
        "/api/v1/namespaces/ns/configmaps/x?fieldManager=m",
    ]


def test_a_connection_the_server_closed_while_idle_is_replaced(serve, tls):
    s = serve(tls=tls)
    kube = s.kube({"certificate-authority-data": b64(tls["ca.crt"])})
    kube.get(CONFIGMAP, "a", "ns")
    s.drop_idle()
    assert kube.get(CONFIGMAP, "b", "ns")["path"].endswith("/b")
    assert s.connections == 2 and len(s.requests) == 2  # seen closed before use: not sent


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
def test_a_kept_connection_dropped_under_a_request_is_retried_once_if_idempotent(
    serve, tls, secure
):
    """The server closes a kept connection as a request arrives (its idle timeout racing
    the request): a GET goes again on a new connection, inside one attempt of the client;
    a POST may have been acted on, so it is not sent again."""
    s = serve(tls=tls if secure else None)
    kube = s.kube({"certificate-authority-data": b64(tls["ca.crt"])} if secure else {})
    kube.get(CONFIGMAP, "a", "ns")
    s.drop_next = True
    assert kube.get(CONFIGMAP, "b", "ns")["path"].endswith("/b")
    assert [p for _, p, _, _ in s.requests][1:] == [s.requests[1][1]] * 2
    assert s.connections == 2
    assert kube.metrics.rest_requests.value(code="<error>", method="GET", host=kube.host) == 0

    s.drop_next = True
    with pytest.raises(ApiError) as err:
        kube.create(CONFIGMAP, {"metadata": {"name": "c"}}, "ns")
    assert err.value.status == 0 and len(s.requests) == 4  # sent once
    assert kube.get(CONFIGMAP, "d", "ns")["path"].endswith("/d")  # the pool recovers


def test_a_server_certificate_from_another_ca_is_refused(serve, tls, other_tls):
    s = serve(tls=tls)
    kube = s.kube({"certificate-authority-data": b64(other_tls["ca.crt"])})
    with pytest.raises(ApiError) as err:
        kube.get(CONFIGMAP, "a", "ns")
    assert err.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in str(err.value)
    assert s.requests == []


def test_ca_from_a_file_and_insecure_skip_verify(serve, tls, tmp_path):
    s = serve(tls=tls)
    ca = tmp_path / "ca.crt"
    ca.write_text(tls["ca.crt"])
    assert s.kube({"certificate-authority": str(ca)}).get(CONFIGMAP, "a", "ns")
    insecure = s.kube({"insecure-skip-tls-verify": True})
    assert insecure.transport == "http.client"
    assert insecure.get(CONFIGMAP, "b", "ns")
    with pytest.raises(ApiError, match="CERTIFICATE_VERIFY_FAILED"):  # certifi's bundle
        s.kube().get(CONFIGMAP, "c", "ns")


def test_tls_server_name_is_what_the_certificate_is_checked_against(serve, tls):
    s = serve(tls=tls)
    ca = {"certificate-authority-data": b64(tls["ca.crt"])}
    assert s.kube({**ca, "tls-server-name": "api.example"}).get(CONFIGMAP, "a", "ns")
    with pytest.raises(ApiError, match="CERTIFICATE_VERIFY_FAILED"):
        s.kube({**ca, "tls-server-name": "elsewhere.example"}).get(CONFIGMAP, "a", "ns")


def test_client_certificate_authenticates(serve, tls, tmp_path):
    s = serve(tls=tls, client_ca=tls["ca.crt"])
    ca = {"certificate-authority-data": b64(tls["ca.crt"])}
    user = {"client-certificate-data": b64(tls["tls.crt"]), "client-key-data": b64(tls["tls.key"])}
    kube = s.kube(ca, user)
    assert kube.transport == "http.client"
    assert kube.get(CONFIGMAP, "a", "ns")
    assert dict(x[0] for x in s.peers[0]["subject"])["commonName"] == "api"
    (tmp_path / "c.crt").write_text(tls["tls.crt"])
    (tmp_path / "c.key").write_text(tls["tls.key"])
    files = {"client-certificate": str(tmp_path / "c.crt"), "client-key": str(tmp_path / "c.key")}
    assert s.kube(ca, files).get(CONFIGMAP, "b", "ns")
    with pytest.raises(ApiError) as err:  # no certificate: the server refuses the handshake
        s.kube(ca).get(CONFIGMAP, "c", "ns")
    assert err.value.status == 0
    assert len(s.requests) == 2


def test_bearer_token_and_basic_auth_headers(serve, tmp_path):
    s = serve()
    s.kube(user={"token": "abc"}).get(CONFIGMAP, "a", "ns")
    s.kube(user={"username": "ann", "password": "pw"}).get(CONFIGMAP, "a", "ns")
    token = tmp_path / "token"
    token.write_text("from-file\n")
    s.kube(user={"tokenFile": str(token), "token": "stale"}).get(CONFIGMAP, "a", "ns")
    s.kube().get(CONFIGMAP, "a", "ns")
    auth = [h.get("Authorization") for _, _, h, _ in s.requests]
    assert auth == ["Bearer abc", "Basic " + b64("ann:pw"), "Bearer from-file", None]


def test_threads_share_a_bounded_pool(serve):
    s = serve()
    kube = s.kube(pool_size=3)
    s.barrier = threading.Barrier(3)  # the first three wait until all three are in flight
    errors = []

    def work(t):
        try:
            for i in range(20):
                assert kube.get(CONFIGMAP, f"t{t}-{i}", "ns")["path"].endswith(f"/t{t}-{i}")
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(s.requests) == 160
    assert s.max_inflight == 3 and s.connections == 3


def test_a_request_without_an_answer_times_out(serve):
    s = serve()
    kube = s.kube(timeout=0.3)
    with pytest.raises(ApiError) as err:
        kube.request("GET", "/hang")
    assert err.value.status == 0 and "timed out" in str(err.value)
    s.release.set()
    assert kube.request("GET", "/after") == {"path": "/after"}


EXEC_API = "client.authentication.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("env", "user", "why"),
    [
        ({"HTTPS_PROXY": "http://127.0.0.1:9"}, {}, "proxy"),
        ({}, {"exec": {"apiVersion": EXEC_API, "command": "x"}}, "exec"),
        ({}, {"auth-provider": {"name": "oidc", "config": {}}}, "auth-provider"),
        ({}, {"as": "someone"}, "keys as"),
    ],
)
def test_what_only_requests_can_do_falls_back_to_it(
    serve, tls, monkeypatch, caplog, env, user, why
):
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = serve(tls=tls)
    caplog.set_level("DEBUG", logger="minop.rest")
    kube = s.kube({"certificate-authority-data": b64(tls["ca.crt"])}, user)
    assert kube.transport == "requests"
    assert why in caplog.text and "requests" in caplog.text
    assert why in kube.transport_note
    text = kube.metrics.render()
    assert f'minop_rest_transport{{host="{kube.host}",transport="requests"}} 1' in text
    assert f'minop_rest_transport{{host="{kube.host}",transport="http.client"}} 0' in text


def test_a_path_is_escaped_as_requests_escaped_it(serve):
    s = serve()
    with pytest.raises(NotFound):
        s.kube().get(CONFIGMAP, "missing é/%41", "ns")
    assert s.requests[0][1] == "/api/v1/namespaces/ns/configmaps/missing%20%C3%A9/%41"


def test_the_transport_is_shown_in_metrics_handed_over_later(serve):
    """The manager gives the client its own Metrics after the client was made."""
    kube = serve().kube()
    kube.metrics = Metrics()
    assert f'minop_rest_transport{{host="{kube.host}",transport="http.client"}} 1' in (
        kube.metrics.render()
    )
