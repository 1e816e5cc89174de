"""Faults the chaos scenarios inject besides the e2e suite's TCP proxy (tests/e2e/proxy.py,
which stalls, cuts or drops connections): etcd compaction; stopping and starting the
local control plane's kube-apiserver."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


# -- etcd ------------------------------------------------------------------------------------


def etcd_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('MINOP_ETCD_PORT', '2379')}"


def _etcd(path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(etcd_url() + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return dict(json.loads(r.read()))


def compact_etcd() -> int:
    """Compacts etcd's whole history up to its current revision (what the API server
    does every 5 minutes, only older); returns that revision."""
    key = base64.b64encode(b"/").decode()
    rev = int(_etcd("/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])
    _etcd("/v3/kv/compaction", {"revision": rev, "physical": True})
    return rev


# -- the local control plane's kube-apiserver ------------------------------------------------


def apiserver(action: str) -> str:
    """``hack/local-cluster.sh apiserver-stop|apiserver-start``: stops or starts only
    kube-apiserver of the local cluster (its PID is in .cluster/pids/)."""
    r = subprocess.run(
        [str(REPO / "hack" / "local-cluster.sh"), f"apiserver-{action}"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if r.returncode != 0:
        raise AssertionError(f"apiserver-{action} failed: {r.stderr.strip()}")
    return r.stderr
