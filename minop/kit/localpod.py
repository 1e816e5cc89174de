"""A pod's container as a local process, for checks with the real programs
(memcached, nginx, redis-server): its mounts laid out under a scratch directory,
its command relocated there, run as the user its securityContext names; the
programs of other Debian releases run from a debootstrapped root."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
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


def debian_root(suite: str, *packages: str) -> Path:
    """A minimal Debian ``suite`` root with ``packages`` (``hack/debian-root.sh``:
    built once into the cache, then reused). Needs root and the repository's ``hack/``."""
    script = Path(__file__).resolve().parents[2] / "hack" / "debian-root.sh"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: Debian roots need a minop checkout")
    out = subprocess.run(
        [str(script), suite, *packages], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


@contextlib.contextmanager
def debian_program(suite: str, package: str, program: str) -> Iterator[tuple[Path, Path]]:
    """``program`` of Debian ``suite``'s ``package`` (``debian_programs``) in a temporary
    directory any user (the pod's) can reach, removed afterwards: (the program, the
    suite's root, for the files the package ships)."""
    root = debian_root(suite, package)
    dest = Path(tempfile.mkdtemp(prefix=f"minop-{package}-{suite}-"))
    try:
        dest.chmod(0o755)  # mkdtemp makes it 0700
        yield debian_programs(root, [program], dest) / program, root
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def debian_programs(root: Path, programs: Iterable[str], dest: Path) -> Path:
    """Wrappers ``dest/bin/<name>`` that run ``root``'s /usr/bin or /usr/sbin ``<name>``
    on this host with the root's own loader and libraries: a Debian release's
    programs, with configs and data on the host. The programs and their libraries
    are copied under ``dest`` (the cache may sit in a home the pod's user cannot
    enter). Returns ``dest/bin``, to put first on PATH."""
    loader = _loader(root)
    lib, libexec, bin_dir = dest / "lib", dest / "libexec", dest / "bin"
    for d in (lib, libexec, bin_dir):
        _mkdir(d)
    shutil.copy(loader, lib / "ld.so")
    search = ":".join(str(root / d) for d in _LIB_DIRS)
    for name in programs:
        found = [root / d / name for d in ("usr/bin", "usr/sbin") if (root / d / name).exists()]
        if not found:
            raise FileNotFoundError(f"{name} is not in {root}/usr/bin or /usr/sbin")
        program = found[0]
        shutil.copy(program, libexec / name)
        listing = subprocess.run(
            [str(loader), "--library-path", search, "--list", str(program)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for dep in re.findall(r"=> (\S+) \(", listing):
            if Path(dep).resolve() != loader and not (lib / Path(dep).name).exists():
                shutil.copy(dep, lib / Path(dep).name)
        wrapper = bin_dir / name
        wrapper.write_text(
            f'#!/bin/sh\nexec "{lib}/ld.so" --library-path "{lib}" "{libexec / name}" "$@"\n'
        )
        wrapper.chmod(0o755)
    for f in (*lib.iterdir(), *libexec.iterdir()):
        f.chmod(0o755)
    return bin_dir


_LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "usr/lib")


def _loader(root: Path) -> Path:
    """The root's dynamic loader, its symlinks resolved inside the root."""
    for d in _LIB_DIRS:
        for candidate in sorted((root / d).glob("ld-linux*.so.*")):
            path = candidate
            while path.is_symlink():
                target = Path(os.readlink(path))  # an absolute target means the root's /
                path = (
                    root / target.relative_to("/") if target.is_absolute() else path.parent / target
                )
            if path.is_file():
                return path
    raise FileNotFoundError(f"no dynamic loader (ld-linux*.so.*) in {root}")


@contextlib.contextmanager
def exporter_program(name: str) -> Iterator[Path]:
    """A metrics exporter the plugins run as a sidecar (``hack/exporters.sh``: built once
    into the cache from the Go module proxy), copied to a temporary directory any user
    (the pod's) can reach, removed afterwards. Needs the repository's ``hack/``."""
    script = Path(__file__).resolve().parents[2] / "hack" / "exporters.sh"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: the exporters need a minop checkout")
    out = subprocess.run([str(script), name], check=True, capture_output=True, text=True)
    dest = Path(tempfile.mkdtemp(prefix=f"minop-{name}-"))
    try:
        dest.chmod(0o755)  # mkdtemp makes it 0700
        program = dest / name
        shutil.copy(out.stdout.strip(), program)
        program.chmod(0o755)
        yield program
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def scrape(url: str, timeout: float = 5.0) -> dict[str, float]:
    """A Prometheus text exposition as {series: value}, a series being the metric's
    name with its labels as written (``nginx_up``, ``memcached_items_total{...}``)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


@contextlib.contextmanager
def started(
    argv: list[str], ready: Callable[[], object], timeout: float = 10.0
) -> Iterator[subprocess.Popen[str]]:
    """``argv`` running until the block ends (then terminated), entered once ``ready()``
    stops raising OSError (a probe: connection refused while it starts)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{argv[0]} exited {proc.returncode}: {_output(proc)}"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{argv[0]} not ready in {timeout}s") from None
                time.sleep(0.05)  # polling a probe, as the kubelet does
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pid1(proc: subprocess.Popen[str]) -> int:
    """The pid 1 of a command started under ``unshare --pid --fork``, seen from outside
    its namespace (unshare's only child): where the kubelet's stop signal goes."""
    return int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text())


def _output(proc: subprocess.Popen[str]) -> str:
    return proc.stdout.read() if proc.stdout else ""
