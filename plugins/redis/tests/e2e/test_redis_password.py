"""Redis password rotation (a Secret change rolls the pods, twice: accept both, then only
the new one), with RollingUpdate, a held partition and OnDelete; and what deleting a
Redis does to its PVCs."""

from __future__ import annotations

import base64
import json
import logging

import pytest
from test_redis import (
    REV,
    added_since,
    apply_redis,
    condition,
    get,
    live_pods,
    marker_edit,
    operator,
    patch_redis,
    pod_watch,
    pvcs,
    redis_crd,  # noqa: F401 (the fixture)
    revisions,
    uids,
    wait_ready,
)

from minop.kit.testing import wait_for

pytestmark = pytest.mark.usefixtures("redis_crd")
FIRST, SECOND = "e2e-first-9c2f41e0", "e2e-second-51aa07b3"
REF = {"name": "pw"}
# A rotation rolls every pod twice: real pods (kind, 4 tests at a time on 2 cores) need
# minutes for that; on KWOK seconds.
ROLLS = 300


def set_password(kubectl, ns, value, create=False):
    if create:
        kubectl("create", "secret", "generic", "pw", "-n", ns, f"--from-literal=password={value}")
    else:
        patch = json.dumps({"stringData": {"password": value}})
        kubectl("patch", "secret/pw", "-n", ns, "-p", patch)


def auth_data(kubectl, ns):
    """The operator's Secret: what the pods are configured with."""
    secret = get(kubectl, ns, "secret/r-auth")
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in secret["data"].items()}


def previous(kubectl, ns):
    return sorted(v for k, v in auth_data(kubectl, ns).items() if k.startswith("previous-"))


def update_revision(kubectl, ns):
    return get(kubectl, ns, "statefulset/r")["status"].get("updateRevision")


def leaked(kubectl, ns, *texts):
    """Where a password shows up outside Secrets (it must not)."""
    places = {}
    for what in ("redis/r", "statefulset/r", "pods", "events", "configmaps"):
        dump = json.dumps(get(kubectl, ns, what))
        places.update({f"{what}: {t}": True for t in texts if t in dump})
    return places


def test_password_change_rolls_the_pods_and_drops_the_old_one(namespace, kubectl, watch, caplog):
    caplog.set_level(logging.DEBUG)
    ns = namespace
    set_password(kubectl, ns, FIRST, create=True)
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=3, passwordSecretRef=REF).returncode == 0
        wait_ready(kubectl, ns, "r")
        assert auth_data(kubectl, ns)["password"] == FIRST and previous(kubectl, ns) == []
        before = update_revision(kubectl, ns)
        baseline = set(uids(kubectl, ns).values())
        pods = pod_watch(watch, ns)

        set_password(kubectl, ns, SECOND)

        def done():
            data, revs = auth_data(kubectl, ns), revisions(kubectl, ns)
            rev = update_revision(kubectl, ns)
            finished = data.get("password") == SECOND and previous(kubectl, ns) == []
            return finished and rev != before and set(revs.values()) == {rev} and len(revs) == 3

        wait_for(done, ROLLS, "the rotation to finish")
        wait_ready(kubectl, ns, "r")
        # two rolls: every pod was replaced at least twice (phase 1 accepts both, phase 2 only
        # SECOND). At least: KWOK finishes a pod's deletion by name, and now and then deletes
        # the StatefulSet's fresh pod of that name too (seen in the audit log), which the
        # controller then recreates; the three revisions below show there were two rolls.
        added = added_since(pods, baseline)
        assert all(added.count(p) >= 2 for p in ("r-0", "r-1", "r-2")), added
        reasons = {
            e["reason"]
            for e in get(kubectl, ns, "events")["items"]
            if e["involvedObject"]["kind"] == "Redis"
        }
        assert "PasswordRotationStarted" in reasons and "PasswordRotationFinishing" in reasons
        status = get(kubectl, ns, "redis/r")["status"]
        assert "passwordRotation" not in status
        revs = {r["metadata"]["name"] for r in get(kubectl, ns, "controllerrevisions")["items"]}
        assert len(revs) == 3, revs  # the first, phase 1, phase 2: no other template
        # neither password outside the Secrets: not in objects, events or the operator's log
        assert leaked(kubectl, ns, FIRST, SECOND) == {}
        assert FIRST not in caplog.text and SECOND not in caplog.text


def test_rotation_waits_for_a_held_partition(namespace, kubectl):
    ns = namespace
    set_password(kubectl, ns, FIRST, create=True)
    with operator(ns):
        held = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
        r = apply_redis(kubectl, ns, "r", replicas=3, passwordSecretRef=REF, updateStrategy=held)
        assert r.returncode == 0, r.stderr
        wait_ready(kubectl, ns, "r")
        first = update_revision(kubectl, ns)
        set_password(kubectl, ns, SECOND)

        def phase1_rolled():
            rev = update_revision(kubectl, ns)
            revs = revisions(kubectl, ns)
            rolled = rev != first and revs.get("r-1") == rev == revs.get("r-2")
            return rev if rolled and revs.get("r-0") == first else None

        phase1 = wait_for(phase1_rolled, ROLLS, "pods 2 and 1 on the phase-1 revision")
        wait_ready(kubectl, ns, "r")  # the held partition is a Ready state
        assert condition(kubectl, ns, "r")["reason"] == "PartitionHeld"
        wait_for(
            lambda: "r-0" in get(kubectl, ns, "redis/r")["status"].get("passwordRotation", ""),
            30,
            "status telling the rotation waits for r-0",
        )
        marker_edit(kubectl, ns)  # r-0 still knows only FIRST: the operator keeps it accepted
        assert previous(kubectl, ns) == [FIRST] and update_revision(kubectl, ns) == phase1

        lower = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}
        assert patch_redis(kubectl, ns, "r", lower).returncode == 0

        def finished():
            rev = update_revision(kubectl, ns)
            revs = revisions(kubectl, ns)
            return previous(kubectl, ns) == [] and rev != phase1 and set(revs.values()) == {rev}

        wait_for(finished, ROLLS, "phase 2 after the partition was lowered")
        wait_for(lambda: condition(kubectl, ns, "r")["reason"] == "AllPodsReady", 120, "Ready")
        assert "passwordRotation" not in get(kubectl, ns, "redis/r")["status"]


def test_rotation_with_on_delete_moves_on_as_the_user_deletes_pods(namespace, kubectl):
    ns = namespace
    set_password(kubectl, ns, FIRST, create=True)
    with operator(ns):
        on_delete = {"type": "OnDelete"}
        r = apply_redis(
            kubectl, ns, "r", replicas=2, passwordSecretRef=REF, updateStrategy=on_delete
        )
        assert r.returncode == 0, r.stderr
        wait_ready(kubectl, ns, "r")
        first = update_revision(kubectl, ns)
        before = uids(kubectl, ns)
        set_password(kubectl, ns, SECOND)
        phase1 = wait_for(
            lambda: (rev := update_revision(kubectl, ns)) != first and rev, 30, "phase 1"
        )
        marker_edit(kubectl, ns)  # OnDelete: nothing replaced by itself, the old password stays
        assert uids(kubectl, ns) == before
        assert previous(kubectl, ns) == [FIRST] and update_revision(kubectl, ns) == phase1
        wait_ready(kubectl, ns, "r")
        assert condition(kubectl, ns, "r")["reason"] == "UpdateWaitsForDelete"

        def delete_and_wait(names, revision):
            for n in names:  # in the user's order, one at a time
                kubectl("delete", "pod", n, "-n", ns)
                wait_for(
                    lambda n=n: revisions(kubectl, ns).get(n) == revision,
                    ROLLS,
                    f"{n} back on {revision}",
                )

        delete_and_wait(["r-0", "r-1"], phase1)  # the primary first, on purpose
        phase2 = wait_for(
            lambda: (rev := update_revision(kubectl, ns)) != phase1 and rev, 60, "phase 2"
        )
        assert previous(kubectl, ns) == [] and auth_data(kubectl, ns)["password"] == SECOND
        delete_and_wait(["r-1", "r-0"], phase2)
        wait_for(lambda: condition(kubectl, ns, "r")["reason"] == "AllPodsReady", 120, "Ready")
        assert set(revisions(kubectl, ns).values()) == {phase2}


def test_deleting_a_redis_keeps_its_pvcs_unless_asked(namespace, kubectl):
    ns = namespace
    with operator(ns):
        assert apply_redis(kubectl, ns, "keep", replicas=2).returncode == 0
        drop = {"whenDeleted": "Delete"}
        assert apply_redis(kubectl, ns, "drop", replicas=2, pvcRetention=drop).returncode == 0
        wait_ready(kubectl, ns, "keep")
        wait_ready(kubectl, ns, "drop")
        claims = ["data-drop-0", "data-drop-1", "data-keep-0", "data-keep-1"]
        wait_for(lambda: pvcs(kubectl, ns) == claims, 60, "4 PVCs Bound")
        pvc = get(kubectl, ns, "pvc/data-drop-0")
        assert pvc["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"  # native policy

        kubectl("delete", "redis/keep", "redis/drop", "-n", ns)
        wait_for(lambda: not get(kubectl, ns, "statefulsets")["items"], 60, "StatefulSets gone")
        wait_for(lambda: live_pods(kubectl, ns) == {}, 60, "pods gone")
        kept = ["data-keep-0", "data-keep-1"]
        # the later events: kubectl delete returned once the operator had finalized both,
        # and the garbage collector has handled both StatefulSets (drop's claims are gone)
        wait_for(lambda: pvcs(kubectl, ns, bound=False) == kept, 90, "drop's PVCs deleted")
        assert pvcs(kubectl, ns) == kept  # the default keeps the data
        for claim in kept:  # and nothing owns the claims that would delete them later
            assert not get(kubectl, ns, f"pvc/{claim}")["metadata"].get("ownerReferences")

        # a new Redis of the same name finds its data again
        assert apply_redis(kubectl, ns, "keep", replicas=2).returncode == 0
        wait_ready(kubectl, ns, "keep")
        assert pvcs(kubectl, ns) == kept
        pod = live_pods(kubectl, ns)["keep-0"]
        claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
        assert claim["persistentVolumeClaim"]["claimName"] == "data-keep-0"
        assert REV in pod["metadata"]["labels"]


def test_a_missing_password_secret_waits_for_it(namespace, kubectl):
    """No StatefulSet without the password; creating the Secret (a watched related
    object) continues at once, without a retry storm or a give-up."""
    ns = namespace
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=1, passwordSecretRef=REF).returncode == 0
        wait_for(
            lambda: (condition(kubectl, ns, "r") or {}).get("reason") == "PasswordSecretMissing",
            30,
            "PasswordSecretMissing",
        )
        degraded = condition(kubectl, ns, "r", "Degraded")
        assert degraded["status"] == "True" and "spec.passwordSecretRef.name" in degraded["message"]
        assert get(kubectl, ns, "statefulset/r", missing_ok=True) is None
        set_password(kubectl, ns, FIRST, create=True)
        wait_ready(kubectl, ns, "r")
        assert auth_data(kubectl, ns)["password"] == FIRST
        assert condition(kubectl, ns, "r", "Degraded")["status"] == "False"


def test_without_a_secret_the_operator_generates_one_once_and_never_overwrites_it(
    namespace, kubectl, caplog
):
    """<name>-password: created once, owned by the Redis, the password of <name>-auth,
    named in status; an edit is kept (and rotates like a user's Secret); deleted, it
    is generated again. A Redis with generatePassword: false gets none."""
    caplog.set_level(logging.DEBUG)
    ns = namespace
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=2).returncode == 0
        wait_ready(kubectl, ns, "r")
        made = get(kubectl, ns, "secret/r-password")
        pw = base64.b64decode(made["data"]["password"]).decode()
        assert len(pw) >= 32 and auth_data(kubectl, ns)["password"] == pw
        [owner] = made["metadata"]["ownerReferences"]
        redis = get(kubectl, ns, "redis/r")
        assert (owner["kind"], owner["uid"]) == ("Redis", redis["metadata"]["uid"])
        assert redis["status"]["passwordSecretRef"] == {"name": "r-password", "key": "password"}
        events = get(kubectl, ns, "events")["items"]
        assert [e["reason"] for e in events].count("PasswordGenerated") == 1
        assert leaked(kubectl, ns, pw) == {} and pw not in caplog.text
        assert "PasswordGenerated" in caplog.text or "generated the client password" in (
            caplog.text
        )  # the log says where, never what

        # the user edits it: kept, and the pods roll to it (two phases, as a rotation)
        set_password_of(kubectl, ns, "r-password", SECOND)
        wait_for(lambda: auth_data(kubectl, ns).get("password") == SECOND, 60, "r-auth follows")
        wait_for(lambda: previous(kubectl, ns) == [], ROLLS, "the rotation to finish")
        assert base64.b64decode(get(kubectl, ns, "secret/r-password")["data"]["password"]) == (
            SECOND.encode()
        )  # never written back
        uid = made["metadata"]["uid"]
        assert get(kubectl, ns, "secret/r-password")["metadata"]["uid"] == uid  # the same one

        # deleted: a new one (a new password, rotated to like any other change)
        kubectl("delete", "secret/r-password", "-n", ns)
        wait_for(
            lambda: (
                (get(kubectl, ns, "secret/r-password", missing_ok=True) or {})
                .get("metadata", {})
                .get("uid")
                not in (None, uid)
            ),
            60,
            "r-password generated again",
        )
        again = base64.b64decode(get(kubectl, ns, "secret/r-password")["data"]["password"])
        assert again.decode() not in (pw, SECOND)
        wait_for(lambda: auth_data(kubectl, ns).get("password") == again.decode(), 60, "used")

        ok = apply_redis(kubectl, ns, "open", replicas=1, auth={"generatePassword": False})
        assert ok.returncode == 0
        wait_ready(kubectl, ns, "open")
        assert get(kubectl, ns, "secret/open-password", missing_ok=True) is None
        assert "password" not in get(kubectl, ns, "secret/open-auth")["data"]
        assert "passwordSecretRef" not in get(kubectl, ns, "redis/open")["status"]
        # generatePassword removed: <name>-auth says the pods run without a password, as an
        # earlier version's object without passwordSecretRef: it keeps none (its clients
        # send none)
        digest = get(kubectl, ns, "secret/open-auth")["metadata"]["annotations"]
        remove = json.dumps([{"op": "remove", "path": "/spec/auth"}])
        kubectl("patch", "redis/open", "-n", ns, "--type=json", "-p", remove)
        generation = get(kubectl, ns, "redis/open")["metadata"]["generation"]
        wait_for(
            lambda: (
                get(kubectl, ns, "redis/open")["status"].get("observedGeneration") == generation
            ),
            60,
            "the operator to handle the change",
        )
        assert get(kubectl, ns, "secret/open-password", missing_ok=True) is None
        assert get(kubectl, ns, "secret/open-auth")["metadata"]["annotations"] == digest


def set_password_of(kubectl, ns, secret, value):
    patch = json.dumps({"stringData": {"password": value}})
    kubectl("patch", f"secret/{secret}", "-n", ns, "-p", patch)


def test_rotating_the_internal_password_rolls_three_times_and_replaces_it(namespace, kubectl):
    """spec.auth.rotateInternalPassword changed: <name>-auth gains replication-next
    (roll 1), sends it with the old one as replication-previous (roll 2), then drops
    the old one (roll 3); the client password is untouched."""
    ns = namespace
    set_password(kubectl, ns, FIRST, create=True)
    with operator(ns):
        assert apply_redis(kubectl, ns, "r", replicas=3, passwordSecretRef=REF).returncode == 0
        wait_ready(kubectl, ns, "r")
        before = auth_data(kubectl, ns)
        first_rev = update_revision(kubectl, ns)
        rotate = {"auth": {"rotateInternalPassword": "1"}}
        assert patch_redis(kubectl, ns, "r", rotate).returncode == 0
        wait_for(lambda: "replication-next" in auth_data(kubectl, ns), 60, "phase 1")
        wait_for(lambda: "replication-previous" in auth_data(kubectl, ns), ROLLS, "phase 2")
        wait_for(
            lambda: set(auth_data(kubectl, ns)) == {"replication", "password"}, ROLLS, "phase 3"
        )
        after = auth_data(kubectl, ns)
        assert after["replication"] != before["replication"] and after["password"] == FIRST
        wait_ready(kubectl, ns, "r")
        revs = {r["metadata"]["name"] for r in get(kubectl, ns, "controllerrevisions")["items"]}
        assert len(revs) == 4 and first_rev in revs  # the first, then one per phase
        reasons = [e["reason"] for e in get(kubectl, ns, "events")["items"]]
        for phase in ("Started", "Sending", "Finishing"):
            assert f"InternalPasswordRotation{phase}" in reasons
        assert leaked(kubectl, ns, before["replication"], after["replication"]) == {}
