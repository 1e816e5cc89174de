"""A pod's container as a local process, for checks with the real programs
(memcached, nginx, redis-server): its mounts laid out under a scratch directory,
its command relocated there, run as the user its securityContext names."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def relocate(text: str, paths: Mapping[str, str]) -> str:
    """Replace every key of ``paths`` in ``text`` by its value in one pass (longest key
    first), so no replacement is replaced again."""
    if not paths:
        return text
    pattern = "|".join(re.escape(k) for k in sorted(paths, key=len, reverse=True))
    return re.sub(pattern, lambda m: paths[m.group(0)], text)


def stage_mounts(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    root: Path,
    files: Mapping[str, Mapping[str, str]] = {},
) -> dict[str, str]:
    """Lay out ``container``'s volume mounts under ``root`` to run it as a local process.

    Every mountPath becomes ``root`` + mountPath, and nothing else moves.
    ``files[volume name]`` is the content of a ConfigMap or Secret volume (a
    ``subPath`` mount takes its one key), with mount paths inside it relocated;
    any other volume is an empty directory owned by the pod's user, like an
    emptyDir. Returns {mountPath: local path} for ``relocate``/``container_argv``.
    """
    mounts = container.get("volumeMounts") or []
    paths = {m["mountPath"]: f"{root}{m['mountPath']}" for m in mounts}
    root.chmod(0o755)  # the pod's user must traverse it (mkdtemp makes it 0700)
    uid, gid = _ids(pod, container)
    for m in mounts:
        target = Path(paths[m["mountPath"]])
        content = files.get(m["name"])
        if content is None:
            _mkdir(target)
            if uid is not None and os.geteuid() == 0:
                os.chown(target, uid, gid)
        elif m.get("subPath"):
            _write(target, relocate(content[m["subPath"]], paths))
        else:
            for key, text in content.items():
                _write(target / key, relocate(text, paths))
    return paths


def run_as(pod: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
    """A ``setpriv`` prefix (util-linux; needs root) that runs a command as the
    securityContext says: the numeric user and group, fsGroup and supplementalGroups as
    the only other groups, no privilege escalation, no capabilities."""
    pod_sc = pod.get("securityContext") or {}
    sc = {**pod_sc, **(container.get("securityContext") or {})}
    uid, gid = _ids(pod, container)
    if uid is None:
        raise ValueError("the pod sets no numeric runAsUser")
    groups = [g for g in (pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])) if g]
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}"]
    argv.append(f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups")
    if sc.get("allowPrivilegeEscalation") is False:
        argv.append("--no-new-privs")
    if "ALL" in ((sc.get("capabilities") or {}).get("drop") or []):
        argv += ["--inh-caps=-all", "--bounding-set=-all"]
    return argv


def container_argv(container: Mapping[str, Any], paths: Mapping[str, str] = {}) -> list[str]:
    """The container's command and args, with mount paths relocated (``stage_mounts``)."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    return [relocate(a, paths) for a in argv]


def _ids(pod: Mapping[str, Any], container: Mapping[str, Any]) -> tuple[int | None, int]:
    sc = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
    # without runAsGroup a numeric user gets group 0, as in a container
    return sc.get("runAsUser"), int(sc.get("runAsGroup") or 0)


def _mkdir(path: Path) -> None:
    if not path.is_dir():
        _mkdir(path.parent)
        path.mkdir()
        path.chmod(0o755)


def _write(path: Path, text: str) -> None:
    _mkdir(path.parent)
    path.write_text(text)
    path.chmod(0o644)  # what the kubelet gives ConfigMap and Secret files by default
