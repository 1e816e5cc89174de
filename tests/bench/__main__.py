"""``make bench``: minop, Kopf and the floor side by side on one cluster, in one run.

    python -m tests.bench [--n 200] [--repeats 3] [--updates 60] [--rate 10]
                          [--memory 1000,5000] [--contenders minop,kopf,floor]

Starts a local control plane with MINOP_CLUSTER_PROFILE=bench unless KUBECONFIG
is set (then MINOP_BENCH_AUDIT names the API server's audit log, default
<repo>/.cluster/logs/audit.log), runs every trial, writes
tests/bench/results/<date>-<commit>.{md,json,svg}, and stops what it started.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from minop.settings import Settings
from tests.bench import report
from tests.bench.kopf_operator import SETTINGS as KOPF_SETTINGS
from tests.bench.kubeapi import GROUP, PLURAL, VERSION, Api, ApiError
from tests.bench.observe import Audit
from tests.bench.procs import CONTENDERS, REPO
from tests.bench.scenarios import Plan, Trial, namespace, run_trial

HACK = REPO / "hack"
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", REPO / ".cluster"))
AGENT = "bench-harness/1"


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextlib.contextmanager
def cluster() -> Iterator[tuple[str, Path, str]]:
    """(kubeconfig, audit log, what the cluster is); stops only a cluster it started."""
    if os.environ.get("KUBECONFIG"):
        audit = Path(os.environ.get("MINOP_BENCH_AUDIT", CLUSTER_DIR / "logs" / "audit.log"))
        if not audit.is_file():
            sys.exit(f"bench: no audit log at {audit}: set MINOP_BENCH_AUDIT to the API server's")
        yield os.environ["KUBECONFIG"], audit, "existing (KUBECONFIG)"
        return
    script = str(HACK / "local-cluster.sh")
    running = subprocess.run([script, "status", "-q"], check=False).returncode == 0
    if running:
        marker = CLUSTER_DIR / "profile"
        profile = marker.read_text().strip() if marker.exists() else "?"
        if profile != "bench":
            sys.exit(
                f"bench: the local cluster in {CLUSTER_DIR} runs with profile {profile!r}, not "
                "'bench' (its components' client limits would be measured): make cluster-down"
            )
        say("using the running local cluster (profile bench); it stays up")
    else:
        say("starting a local cluster (MINOP_CLUSTER_PROFILE=bench)")
        env = {**os.environ, "MINOP_CLUSTER_PROFILE": "bench"}
        subprocess.run([script, "up"], check=True, env=env, stdout=subprocess.DEVNULL)
    try:
        yield (
            str(CLUSTER_DIR / "kubeconfig"),
            CLUSTER_DIR / "logs" / "audit.log",
            ("local, profile bench" + ("" if running else ", started by the bench")),
        )
    finally:
        if not running:
            say("stopping the local cluster")
            subprocess.run([script, "down"], check=False)


def install_crd(api: Api) -> None:
    crds = subprocess.run(
        [sys.executable, "-m", "minop", "crds"], check=True, capture_output=True, text=True
    ).stdout
    for doc in yaml.safe_load_all(crds):
        if doc and doc["metadata"]["name"] == f"{PLURAL}.{GROUP}":
            api.request(
                "PATCH",
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{doc['metadata']['name']}",
                doc,
                params={"fieldManager": "bench", "force": "true"},
                content_type="application/apply-patch+yaml",
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError):
            found = api.get(f"/apis/{GROUP}/{VERSION}")
            if any(r["name"] == PLURAL for r in found.get("resources") or []):
                return
        time.sleep(0.2)
    raise TimeoutError("the Memcached CRD was not served within 60s")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def facts(api: Api, args: argparse.Namespace, where: str) -> dict[str, Any]:
    dirty = bool(git("status", "--porcelain", "--", "minop", "plugins"))
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    version = api.get("/version")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else ""),
        "core_commit": git("log", "-1", "--format=%h %s", "--", "minop"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {mem_kb // 1024} MiB, "
        f"{platform.platform()}",
        "cpu": _cpu_model(),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "kubernetes": version.get("gitVersion"),
        "cluster": where,
        "versions": {
            p: metadata.version(p) for p in ("minop", "minop-memcached", "kopf", "pykube-ng")
        },
        "n": args.n,
        "repeats": args.repeats,
        "updates": f"{args.updates} at {args.rate:g}/s",
        "memory_points": ",".join(str(p) for p in [0, args.n, *args.memory]),
        "settings": {
            "minop": _minop_settings(),
            "kopf": KOPF_SETTINGS,
            "floor": "4 worker threads, no client-side limit",
        },
    }


def _minop_settings() -> str:
    d = Settings()
    limit = f"{d.qps:g} QPS / burst {d.burst}" if d.qps else "none"
    return (
        f"the defaults of `minop run` ({d.workers} workers, client-side rate limit: {limit}), "
        "--no-leader-elect, -n <ns>"
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    p.add_argument("--n", type=int, default=200, help="objects in the burst (200)")
    p.add_argument("--repeats", type=int, default=3, help="trials per contender (3)")
    p.add_argument("--updates", type=int, default=60, help="spec.size changes per trial (60)")
    p.add_argument("--rate", type=float, default=10.0, help="updates per second (10)")
    p.add_argument(
        "--memory",
        default="",
        help="more object counts to measure idle RSS at, after the last repeat (e.g. 1000,5000)",
    )
    p.add_argument("--contenders", default="minop,kopf,floor")
    p.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the minop process of the last repeat (.bench/<run>/*.pyspy.txt, "
        "summed up by python -m tests.bench.profile)",
    )
    p.add_argument("--out", default=str(REPO / "tests" / "bench" / "results"))
    args = p.parse_args()
    args.memory = tuple(sorted(int(x) for x in args.memory.split(",") if x.strip()))
    if any(m <= args.n for m in args.memory):
        p.error(f"--memory: every point must be above --n ({args.n})")
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        p.error(f"--contenders: unknown {', '.join(unknown)} (minop, kopf, floor)")

    run_id = time.strftime("%Y%m%d-%H%M%S")
    logs = REPO / ".bench" / run_id
    logs.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    with cluster() as (kubeconfig, audit_path, where):
        api = Api(kubeconfig, AGENT)
        install_crd(api)
        info = facts(api, args, where)
        audit = Audit(audit_path)
        trials: list[Trial] = []
        for repeat in range(args.repeats):
            order = names[repeat % len(names) :] + names[: repeat % len(names)]
            for name in order:
                last = repeat == args.repeats - 1
                memory = args.memory if last else ()
                plan = Plan(
                    args.n,
                    args.updates,
                    args.rate,
                    memory,
                    logs,
                    run_id[-6:],
                    args.profile and last,
                )
                say(f"{name} #{repeat}: N={args.n}")
                t = run_trial(api, audit, kubeconfig, CONTENDERS[name], repeat, plan)
                trials.append(t)
                say(
                    f"{name} #{repeat}: children {_s(t.children_s)} Ready {_s(t.ready_s)} "
                    f"writes {sum(t.burst_writes.values())} restart writes "
                    f"{sum(t.restart_writes.values())} rss {t.rss_mb} "
                    f"{'errors: ' + '; '.join(t.errors) if t.errors else ''}"
                )
        if "started by the bench" not in where:  # leave someone else's cluster as it was
            for t in trials:
                with contextlib.suppress(ApiError):
                    api.delete(
                        f"/api/v1/namespaces/{namespace(run_id[-6:], t.contender, t.repeat)}"
                    )
        used = sorted({t.transport for t in trials if t.transport})
        if used:
            info["settings"]["minop"] += f"; API transport (its /metrics): {', '.join(used)}"
        info["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        info["duration_s"] = round(time.monotonic() - t_start)
        info["logs"] = str(logs.relative_to(REPO))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{info['date'][:10]}-{info['commit']}"
    path, lines = report.write(out, stem, info, trials)
    print("\n".join(lines))
    say(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}s"


if __name__ == "__main__":
    main()
