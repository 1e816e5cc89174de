"""A SIGTERM while the operator still starts (its cache not synced) stops it."""

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from minop.kit.testing import wait_for


class SlowApi:
    """Answers discovery; every list hangs until ``close`` (an API server that is slow)."""

    def __init__(self) -> None:
        self.lists: list[str] = []
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/version":
                    return self._json({"major": "1", "minor": "36"})
                if self.path.startswith("/apis/cache.minop.dev/"):
                    return self._json({"resources": [{"name": "memcacheds"}]})
                api.lists.append(self.path)
                api.release.wait(30)

            def _json(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def kubeconfig(self) -> dict:
        url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        return {
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()


def test_sigterm_while_the_cache_syncs_stops_the_operator(tmp_path):
    api = SlowApi()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(api.kubeconfig()))
    env = {
        **os.environ,
        "KUBECONFIG": str(config),
        "MINOP_PLUGINS": "memcached",
        "MINOP_HEALTH_ADDR": "0",
        "MINOP_METRICS_ADDR": "0",
        "MINOP_LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "minop", "run"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: api.lists, 30, "the operator listing (its cache syncing)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "signal SIGTERM: shutting down" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        api.close()
