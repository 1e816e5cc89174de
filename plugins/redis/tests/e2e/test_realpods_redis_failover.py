"""Redis failover with real pods (kind): the primary's pod deleted (it hands over in its
preStop hook), then its redis-server killed with -9 (the Sentinels elect one to fail
over), then its pod force-deleted with its Sentinel. Each time a replica is promoted
within 30 s, writes through the `<name>` Service work again, every key acknowledged
with `WAIT` before the failure is there, the old primary comes back as a replica, and no
sample (every second, every pod asked for its ROLE) ever finds two masters. A Sentinel
in TILT mode (CPU-starved: its timer ran over 2 s late) holds every decision for 30 s;
the deadline grows by that only where a Sentinel logged it. The Sentinel objects and
labels on KWOK are in test_redis_failover.py; a replica loading a full resync that
liveness keeps is in test_realpods_redis_loading.py."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_redis_realpods import redis_with_password

from minop.kit.e2e.deployment import get
from minop.kit.e2e.pods import client_pod, first_through_service, run_in, wait
from minop.kit.testing import wait_for

pytestmark = [pytest.mark.realpods, pytest.mark.usefixtures("plugin_crds", "operator")]
Kubectl = Callable[..., Any]
PW = "failover-e2e"
KEYS = 200
DEADLINE = 30.0  # seconds from the failure to a new primary taking writes
TILT_PERIOD = 30.0  # Sentinel's, fixed


class RoleSampler:
    """Every second, every pod's ROLE, asked from inside the cluster by one long-running
    loop in the client pod; one line per round: ``<epoch> <role of 0> <role of 1> ...``
    (``down`` where a pod did not answer within 2 s)."""

    def __init__(self, kubeconfig: str, ns: str, name: str, replicas: int) -> None:
        hosts = " ".join(
            f"{name}-{i}.{name}-headless.{ns}.svc.cluster.local" for i in range(replicas)
        )
        # a round starts every second in the background, so slow answers on a busy node
        # overlap instead of stretching the cadence; within a round the pods are asked
        # at once; one echo per round keeps a line whole on the pipe
        script = (
            "while :; do ( d=/tmp/round.$BASHPID; mkdir $d; line=$(date +%s); "
            'for h in $0; do (timeout 2 redis-cli -h "$h" -a "$1" --no-auth-warning ROLE '
            '2>/dev/null | head -1 > "$d/$h") & done; wait; for h in $0; do '
            'r=$(cat "$d/$h"); line="$line ${r:-down}"; done; rm -rf $d; '
            'echo "$line" ) & sleep 1; done'
        )
        self.proc = subprocess.Popen(
            ["kubectl", "--kubeconfig", kubeconfig, "exec", "-n", ns, "client", "--",
             "bash", "-c", script, hosts, PW],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self._rounds: list[tuple[int, list[str]]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            stamp, *roles = line.split()
            self._rounds.append((int(stamp), roles))

    @property
    def rounds(self) -> list[tuple[int, list[str]]]:
        """In the order they started (overlapping rounds can finish out of order)."""
        return sorted(self._rounds, key=lambda r: r[0])

    def masters(self, since: int = 0) -> list[int]:
        return [roles.count("master") for stamp, roles in self.rounds if stamp >= since]

    def longest_without_master(self) -> int:
        """Seconds from the first round without a master to the next round with one."""
        longest, gap_from = 0, None
        for stamp, roles in self.rounds:
            if "master" not in roles:
                gap_from = stamp if gap_from is None else gap_from
            elif gap_from is not None:
                longest, gap_from = max(longest, stamp - gap_from), None
        return longest

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def sampler(namespace: str, kubectl: Kubectl, kubeconfig: str) -> Iterator[RoleSampler]:
    client_pod(namespace, kubectl, "minop/redis:7")
    s = RoleSampler(kubeconfig, namespace, "r", 3)
    yield s
    s.stop()


def test_redis_fails_over_when_the_primary_pod_is_deleted_and_when_its_server_is_killed(
    namespace, kubectl, sampler
):
    ns = namespace
    redis_with_password(
        kubectl, ns, PW, replicas=3, sentinel={"enabled": True}, minReplicasToWrite=1
    )

    def cli(host: str, *args: str, stdin: str | None = None) -> str:
        """redis-cli in the client pod, given up after 15 s as a client's timeouts would
        (fails; wait_for asks again): through the Service, kube-proxy can still send a
        connection to the IP of a pod that just went away, which never answers."""
        cmd = ["timeout", "15", "redis-cli", "-h", host, "-a", PW, "--no-auth-warning", *args]
        if stdin is None:
            return run_in(kubectl, ns, "client", *cmd).strip()
        script = 'printf "%s" "$0" | "$@"'
        return run_in(kubectl, ns, "client", "bash", "-c", script, stdin, *cmd).strip()

    def primary() -> str | None:
        return (get(kubectl, ns, "redis/r").get("status") or {}).get("primary")

    def acknowledged_writes(batch: str) -> None:
        """KEYS keys through the Service, then WAIT until a replica has them all."""
        sets = "".join(f"SET {batch}-{i} v{i}\n" for i in range(KEYS))
        out = first_through_service(
            lambda: cli("r", stdin=sets + "WAIT 2 5000\n"),
            lambda out: out.splitlines()[:KEYS] == ["OK"] * KEYS,
            f"{batch}: writes through the Service",
        ).splitlines()
        assert int(out[-1]) >= 1, out  # WAIT: replicas that acknowledged every write

    def keys_present(batch: str) -> None:
        got = cli("r", "MGET", *(f"{batch}-{i}" for i in range(KEYS))).splitlines()
        assert got == [f"v{i}" for i in range(KEYS)], f"{batch}: {got.count('')} keys lost"

    def sentinel_log(i: int, seconds: float = 0) -> list[str]:
        since = [f"--since={int(seconds) + 1}s"] if seconds else ["--tail=40"]
        log = kubectl("logs", "-n", ns, f"r-{i}", "-c", "sentinel", *since, check=False)
        return log.stdout.splitlines()

    failures: list[int] = []  # when each failure began (epoch seconds, as the rounds)

    def fail_over(old: str, how: str, fail: Callable[[], None]) -> str:
        started = time.monotonic()
        failures.append(int(time.time()))
        fail()

        def promoted() -> str | None:
            new = primary()
            if new in (None, old):
                return None
            return new if cli("r", "SET", f"after-{how}", "1") == "OK" else None

        what = f"a new primary taking writes after {how}"
        try:
            # Sentinel's TILT mode (its timer ran > 2 s late: a starved process) holds
            # every decision for 30 s; allowed only where a Sentinel logged it
            new = wait_for(promoted, DEADLINE + TILT_PERIOD, what, 1)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{views()}") from None
        took = time.monotonic() - started
        print(f"{how}: {new} takes writes through the Service after {took:.1f}s")
        if took > DEADLINE:
            tilted = [i for i in range(3) if any("+tilt" in x for x in sentinel_log(i, took))]
            assert tilted, f"{what}: {took:.1f}s, and no Sentinel was in TILT mode\n{views()}"
            print(f"NOTE: {how}: the Sentinels of r-{tilted} were in TILT mode (CPU-starved)")
        return str(new)

    def views() -> str:
        """What each Sentinel names primary and logged, the status, the last ROLE rounds."""
        lines = []
        for i in range(3):
            host = f"r-{i}.r-headless.{ns}.svc.cluster.local"
            ask = ["-p", "26379", "SENTINEL", "get-master-addr-by-name", "r"]
            cmd = ["redis-cli", "-h", host, "-a", PW, "--no-auth-warning", *ask]
            r = kubectl("exec", "-n", ns, "client", "--", *cmd, check=False)
            lines.append(f"sentinel r-{i}: {(r.stdout + r.stderr).strip()!r}")
            lines += [f"  r-{i} sentinel log: {line}" for line in sentinel_log(i)]
        lines.append(f"status: {get(kubectl, ns, 'redis/r').get('status')}")
        lines += [f"round {stamp}: {roles}" for stamp, roles in sampler.rounds[-40:]]
        return "\n".join(lines)

    def back_as_replica(old: str, new: str) -> None:
        wait(kubectl, ns, f"pod/{old}", 180)
        host = f"{old}.r-headless.{ns}.svc.cluster.local"

        def following() -> bool:
            info = cli(host, "INFO", "replication")
            return "role:slave" in info and "master_link_status:up" in info

        wait_for(following, 120, f"{old} replicating {new}", 1)
        assert cli(host, "ROLE").splitlines()[1].startswith(f"{new}.")

    wait_for(lambda: sampler.masters(), 60, "the first ROLE samples")
    first = primary()
    assert first is not None
    acknowledged_writes("before-delete")

    # 1. the primary's pod is deleted
    since = int(time.time())
    second = fail_over(
        first, "pod deleted", lambda: kubectl("delete", "pod", first, "-n", ns, "--wait=false")
    )
    keys_present("before-delete")
    # a hand-over by the deleted pod's preStop hook, not a failover after an election
    survivors = [i for i in range(3) if f"r-{i}" != first]
    asked = [i for i in survivors if any("user requested FAILOVER" in line for line in
             sentinel_log(i, time.time() - since))]  # fmt: skip
    assert asked, f"no Sentinel was asked for the hand-over\n{views()}"
    back_as_replica(first, second)

    # 2. the (new) primary's redis-server is killed with -9: the kubelet restarts the
    # container in the same pod, which must come back as a replica
    acknowledged_writes("before-kill")
    pod = get(kubectl, ns, f"pod/{second}")
    third = fail_over(second, "redis-server killed", lambda: kill_9(pod, "redis"))
    keys_present("before-delete")
    keys_present("before-kill")
    back_as_replica(second, third)
    restarts = get(kubectl, ns, f"pod/{second}")["status"]["containerStatuses"]
    assert next(c["restartCount"] for c in restarts if c["name"] == "redis") >= 1

    # 3. the primary's pod force-deleted, its Sentinel with it (no hand-over to wait
    # for), after pods were recreated (1.) and restarted (2.): the other two Sentinels
    # still make a majority of three and fail over
    acknowledged_writes("before-force")
    force = ["--grace-period=0", "--force", "--wait=false"]
    fourth = fail_over(third, "pod force-deleted with its Sentinel",
                       lambda: kubectl("delete", "pod", third, "-n", ns, *force))  # fmt: skip
    for batch in ("before-delete", "before-kill", "before-force"):
        keys_present(batch)
    back_as_replica(third, fourth)

    masters, gap = sampler.masters(since), sampler.longest_without_master()
    print(f"ROLE rounds: {len(masters)}, without a master: {masters.count(0)}, longest: {gap}s")
    # the rounds covered each failure and what followed it (however late a busy node ran
    # the loop), and none of them ever found two masters
    stamps = [stamp for stamp, _ in sampler.rounds]
    for begun, next_one in itertools.pairwise([*failures, int(time.time())]):
        assert any(begun <= s <= next_one for s in stamps), (begun, next_one, stamps)
    assert max(masters) == 1, masters  # never two
    # and one now (asked without the sampler's 2 s limit, which a busy node can miss)
    roles = [cli(f"r-{i}.r-headless.{ns}.svc.cluster.local", "ROLE") for i in range(3)]
    assert [r.splitlines()[0] for r in roles].count("master") == 1, roles


def kill_9(pod: dict[str, Any], container: str) -> None:
    """SIGKILL to a container's main process from its kind node (the process is PID 1 in
    its own namespace, which ignores SIGKILL sent from inside)."""
    meta = pod["metadata"]
    find = (
        'p=$(crictl pods -q --name "$0" --namespace "$1"); '
        'c=$(crictl ps -q --name "^$2$" --pod "$p"); '
        "kill -9 $(crictl inspect --output go-template --template '{{.info.pid}}' \"$c\")"
    )
    node = pod["spec"]["nodeName"]  # a kind node's container has the node's name
    subprocess.run(
        ["docker", "exec", node, "sh", "-c", find, meta["name"], meta["namespace"], container],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
