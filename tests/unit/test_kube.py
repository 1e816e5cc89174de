"""The HTTP client's own behaviour: retries, Retry-After, write fence, User-Agent, counts."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from minop.apierrors import ApiError, NotFound, WritesFenced
from minop.kinds import CONFIGMAP
from minop.kube import Kube


class Script:
    """Answers requests from a list of (status, headers, body); records what came."""

    def __init__(self, answers):
        self.answers, self.seen = list(answers), []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                script.seen.append((self.command, self.path, dict(self.headers), body))
                code, headers, payload = script.answers.pop(0) if script.answers else (200, {}, {})
                data = json.dumps(payload).encode()
                self.send_response(code)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.kube = Kube(
            {
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            },
            agent="minop/test (host/1)",
            qps=0,
        )


@pytest.fixture
def script():
    made = []

    def make(answers):
        s = Script(answers)
        made.append(s)
        return s

    yield make
    for s in made:
        s.httpd.shutdown()


def status(code, reason, message="", **extra):
    return (
        code,
        extra.pop("headers", {}),
        {"kind": "Status", "code": code, "reason": reason, "message": message, **extra},
    )


def test_429_is_retried_after_retry_after_and_requests_are_counted(script):
    s = script(
        [
            status(429, "TooManyRequests", headers={"Retry-After": "0"}),
            status(429, "TooManyRequests", headers={"Retry-After": "0"}),
            (200, {}, {"metadata": {"name": "x"}}),
        ]
    )
    assert s.kube.get(CONFIGMAP, "x", "ns")["metadata"]["name"] == "x"
    assert len(s.seen) == 3
    assert s.seen[0][2]["User-Agent"] == "minop/test (host/1)"
    m = s.kube.metrics.rest_requests
    assert m.value(code="429", method="GET", host=s.kube.host) == 2
    assert m.value(code="200", method="GET", host=s.kube.host) == 1


def test_5xx_retried_for_idempotent_verbs_but_not_for_create(script):
    s = script([status(503, "ServiceUnavailable"), (200, {}, {})])
    s.kube.retries = 3
    s.kube.patch(CONFIGMAP, "x", {"data": {}}, "ns")
    assert len(s.seen) == 2
    s2 = script([status(500, "InternalError", "etcd timeout")])
    with pytest.raises(ApiError) as err:
        s2.kube.create(CONFIGMAP, {"metadata": {"name": "x"}}, "ns")
    assert err.value.status == 500 and err.value.retryable and len(s2.seen) == 1


def test_an_apply_the_server_cannot_type_is_not_retried(script):
    """Server-side apply answers 500 for an unknown field in a free-form part of the
    desired state: a hook error (finite tries, Degraded), not API trouble retried forever."""
    msg = (
        "failed to create typed patch object (ns/x; /v1, Kind=ConfigMap): "
        ".junk: field not declared in schema"
    )
    s = script([status(500, "InternalError", msg)])
    s.kube.retries = 3
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}}
    with pytest.raises(ApiError) as err:
        s.kube.apply(CONFIGMAP, body)
    assert err.value.status == 500 and not err.value.retryable and len(s.seen) == 1


def test_errors_carry_status_reason_and_field_causes(script):
    causes = [{"field": "spec.size", "message": "must be <= 10"}]
    s = script(
        [
            status(404, "NotFound", "configmaps x not found"),
            status(422, "Invalid", "invalid", details={"causes": causes}),
        ]
    )
    with pytest.raises(NotFound):
        s.kube.get(CONFIGMAP, "x", "ns")
    with pytest.raises(ApiError) as err:
        s.kube.apply(
            CONFIGMAP,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}},
        )
    assert err.value.status == 422 and not err.value.retryable
    assert err.value.causes == causes


def test_server_side_apply_and_json_patch_send_their_content_types(script):
    s = script([])
    s.kube.apply(
        CONFIGMAP,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "ns"}},
    )
    s.kube.patch(
        CONFIGMAP, "x", [{"op": "test", "path": "/a", "value": 1}], "ns", patch_type="json"
    )
    (m1, p1, h1, _), (_, _, h2, _) = s.seen
    assert m1 == "PATCH" and h1["Content-Type"] == "application/apply-patch+yaml"
    assert "fieldManager=minop" in p1 and "force=true" in p1
    assert h2["Content-Type"] == "application/json-patch+json"


def test_write_fence_refuses_writes_but_not_reads(script):
    s = script([])
    s.kube.fence = lambda: False
    with pytest.raises(WritesFenced):
        s.kube.patch(CONFIGMAP, "x", {}, "ns")
    s.kube.get(CONFIGMAP, "x", "ns")
    assert [m for m, *_ in s.seen] == ["GET"]


def test_list_follows_continue_tokens(script):
    s = script(
        [
            (
                200,
                {},
                {
                    "metadata": {"continue": "c1", "resourceVersion": "5"},
                    "items": [{"metadata": {"name": "a"}}],
                },
            ),
            (
                200,
                {},
                {"metadata": {"resourceVersion": "6"}, "items": [{"metadata": {"name": "b"}}]},
            ),
        ]
    )
    items, rv = s.kube.list(CONFIGMAP, "ns", page_size=1)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and rv == "6"
    assert "continue=c1" in s.seen[1][1] and "limit=1" in s.seen[0][1]
    assert items[0]["kind"] == "ConfigMap"


def test_list_transforms_each_page_before_asking_for_the_next(script):
    """managedFields and the like are never held for the whole list (issue 28)."""
    pages = [
        {"metadata": {"continue": "c1", "resourceVersion": "5"}, "items": [named("a")]},
        {"metadata": {"resourceVersion": "6"}, "items": [named("b")]},
    ]
    for page in pages:
        page["items"][0]["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    s = script([(200, {}, p) for p in pages])
    asked: list[tuple[str, int]] = []  # (object, requests sent when it was transformed)

    def slim(obj):
        asked.append((obj["metadata"]["name"], len(s.seen)))
        return {**obj, "metadata": {"name": obj["metadata"]["name"]}}

    items, _ = s.kube.list(CONFIGMAP, "ns", page_size=1, transform=slim)
    assert asked == [("a", 1), ("b", 2)]
    assert [i["metadata"] for i in items] == [{"name": n} for n in "ab"]


def named(name):
    return {"metadata": {"name": name}}


def test_an_expired_continue_token_lists_the_rest_unpaginated_once(script):
    """Paging again from scratch could expire again on every try, with no backoff."""
    page = {"metadata": {"continue": "c1", "resourceVersion": "5"}, "items": [named("a")]}
    whole = {"metadata": {"resourceVersion": "9"}, "items": [named(n) for n in "abc"]}
    s = script(
        [(200, {}, page), status(410, "Expired", "continue token expired"), (200, {}, whole)]
    )
    pages = []
    items, rv = s.kube.list(CONFIGMAP, "ns", page_size=1, progress=lambda: pages.append(1))
    assert [i["metadata"]["name"] for i in items] == ["a", "b", "c"] and rv == "9"
    assert "limit" not in s.seen[2][1] and "continue" not in s.seen[2][1]
    assert len(s.seen) == 3 and len(pages) == 2  # every page answered counts as progress


def test_projected_token_file_is_reread(script, tmp_path, monkeypatch):
    token = tmp_path / "token"
    token.write_text("one")
    s = script([])
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": s.kube.server}}],
        "users": [{"name": "u", "user": {"tokenFile": str(token)}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    kube = Kube(doc, agent="t", qps=0)
    kube.get(CONFIGMAP, "x", "ns")
    token.write_text("two")
    kube._token._read_at -= 120  # a minute later
    kube.get(CONFIGMAP, "x", "ns")
    assert [h["Authorization"] for _, _, h, _ in s.seen] == ["Bearer one", "Bearer two"]


def test_write_fence_is_checked_on_every_attempt_so_a_retried_write_never_lands_late(script):
    """Defect 6: a write throttled with 429 must not be sent again once leadership is in
    doubt; before, the fence was checked once, before the retry loop."""
    s = script([status(429, "TooManyRequests", headers={"Retry-After": "0"}), (200, {}, {})])
    leading = iter([True, False])
    s.kube.fence = lambda: next(leading)
    with pytest.raises(WritesFenced):
        s.kube.patch(CONFIGMAP, "x", {}, "ns")
    assert [m for m, *_ in s.seen] == ["PATCH"]  # the retry was never sent


def test_leader_election_has_its_own_client_unthrottled_by_other_traffic(script):
    """Defect 7: renewals never wait in the limiter other requests use."""
    s = script([])
    s.kube.limiter.configure(0.01, 1)  # one request per 100 s for everything else
    s.kube.get(CONFIGMAP, "x", "ns")  # the burst is used up
    elector = s.kube.for_leader_election()
    elector.timeout = 2.0
    elector.get(CONFIGMAP, "lease", "ns")  # would wait ~100 s on the shared limiter
    assert s.seen[-1][2]["User-Agent"] == "minop/test (host/1) leader-election"
    assert elector.limiter is not s.kube.limiter


def test_client_side_rate_limit_is_off_by_default(script):
    s = script([])
    kube = Kube(s.kube.config_doc, agent="a")
    assert kube.limiter.qps == 0


def test_the_proxy_environment_is_read_once_when_the_client_is_made(script, monkeypatch):
    proxy = script([(200, {}, {"via": "proxy"})] * 2)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.httpd.server_address[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    api = script([])
    monkeypatch.delenv("HTTP_PROXY")  # later changes do not matter, as in client-go
    assert api.kube.request("GET", "/version") == {"via": "proxy"}
    server = f"http://127.0.0.1:{api.httpd.server_address[1]}"
    assert proxy.seen[0][1] == f"{server}/version"  # the absolute form: sent to the proxy
    assert api.seen == []

    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.httpd.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = script([(200, {}, {"via": "direct"})])
    assert direct.kube.request("GET", "/version") == {"via": "direct"}
    assert len(proxy.seen) == 1
