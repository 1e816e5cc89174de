"""Run a real program on untrusted input (a tenant's configuration) inside the
operator's own pod, confined by the kernel, unprivileged:

- Landlock (Linux 5.13+): the program and its children open, run or create files
  only beneath the directories given (read-only or read-write); everything else,
  the operator's ServiceAccount token first, fails with EACCES.
- seccomp: ``connect``, ``sendto``, ``sendmsg``, ``sendmmsg`` and ``io_uring_setup``
  fail with EACCES, so nothing reaches the network: no DNS query (a name fails at
  once instead of blocking for the resolver's timeouts), no upstream.
- an empty environment, its own session killed whole at the time bound, a CPU limit.

Both need no capability and no user namespace (``no_new_privs`` is all they ask),
so they work in a restricted pod as a non-root user. Where either is missing
(an old kernel, a seccomp profile denying Landlock's syscalls), ``available()`` is
False and callers must not run the program at all: this module never runs one
unconfined.

The confinement is applied by this module run as a program, just before it execs
the target: ``python -m minop.kit.sandbox --read DIR --write DIR -- argv...``.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import platform
import resource
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]

# Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every arch.
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
# the rights each ABI version adds: 1 the first 13, 2 REFER, 3 TRUNCATE, 5 IOCTL_DEV
_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | (1 << 14) | (1 << 15)
_READ = _EXECUTE | _READ_FILE | _READ_DIR

_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
# (AUDIT_ARCH, denied syscall numbers: connect, sendto, sendmsg, sendmmsg, io_uring_setup)
_ARCH = {
    "x86_64": (0xC000003E, (42, 44, 46, 307, 425)),
    "aarch64": (0xC00000B7, (203, 206, 211, 269, 425)),
}
_X32_BIT = 0x40000000  # x86_64's x32 ABI: another syscall table, denied whole
_EACCES = 13

# Directories a dynamically linked program needs to start (its libraries, the loader's
# cache) and the user database (to look a user up, read-only, no secrets).
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache")
SYSTEM_READ_FILES = ("/etc/passwd", "/etc/group")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _abi() -> int:
    r = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return int(r) if r > 0 else 0


@functools.cache
def available() -> bool:
    """Whether this kernel and process can confine a program (Landlock and seccomp)."""
    if platform.machine() not in _ARCH or sys.platform != "linux":
        return False
    try:
        probe = subprocess.run(
            [*command(["true"], read=(), write=())],
            env=ENV,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def command(
    argv: Sequence[str], read: Iterable[str], write: Iterable[str], cpu_seconds: int = 10
) -> list[str]:
    """``argv`` prefixed with this module's confinement: it may read and execute
    beneath ``read`` (and the system's libraries), read and write beneath ``write``,
    use ``cpu_seconds`` of CPU."""
    out = [sys.executable, "-m", "minop.kit.sandbox", "--cpu", str(cpu_seconds)]
    for path in read:
        out += ["--read", str(path)]
    for path in write:
        out += ["--write", str(path)]
    return [*out, "--", *argv]


def run(
    argv: Sequence[str],
    *,
    read: Iterable[str],
    write: Iterable[str],
    timeout: float,
    cpu_seconds: int = 10,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` confined (``command``) in a session of its own, stdout discarded,
    stderr captured; the whole session is killed at ``timeout`` (TimeoutExpired)."""
    cmd = command(argv, read, write, cpu_seconds)
    with subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    ) as proc:
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, None, err)


def confine(read: Iterable[str], write: Iterable[str]) -> None:
    """Confine this process and every program it runs from now on. Raises OSError
    when the kernel refuses either part: the caller must then not go on."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _raise("prctl(PR_SET_NO_NEW_PRIVS)")
    _landlock(read, write)
    _seccomp()


def _landlock(read: Iterable[str], write: Iterable[str]) -> None:
    abi = _abi()
    if abi < 1:
        _raise("Landlock is not available")
    handled = _ALL_BY_ABI[max(v for v in _ALL_BY_ABI if v <= abi)]
    attr = ctypes.c_uint64(handled)
    ruleset = _libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(8), 0)
    if ruleset < 0:
        _raise("landlock_create_ruleset")
    rules = [(p, _READ) for p in (*SYSTEM_READ, *SYSTEM_READ_FILES, *read)]
    rules += [(p, handled) for p in write]
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # e.g. no /lib64 on this system
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_RIGHTS  # a file takes only file rights
                beneath = ctypes.create_string_buffer(struct.pack("=Qi", rights & handled, fd))
                if _libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, beneath, 0) != 0:
                    _raise(f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        if _libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            _raise("landlock_restrict_self")
    finally:
        os.close(ruleset)


def _seccomp() -> None:
    arch, denied = _ARCH[platform.machine()]
    # classic BPF over struct seccomp_data: nr at offset 0, arch at offset 4
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | _EACCES  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO
    checks = [(jge, _X32_BIT)] if arch == 0xC000003E else []
    checks += [(jeq, nr) for nr in denied]
    prog = [(ld_abs, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, deny), (ld_abs, 0, 0, 0)]
    for i, (op, k) in enumerate(checks):
        prog.append((op, len(checks) - i, 0, k))  # true: jump to the final deny
    prog += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    raw = b"".join(struct.pack("=HBBI", *f) for f in prog)
    filters = ctypes.create_string_buffer(raw)

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Prog(len(prog), ctypes.cast(filters, ctypes.c_void_p))
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        _raise("seccomp")


def _raise(what: str) -> None:
    err = ctypes.get_errno()
    raise OSError(err, f"{what}: {os.strerror(err) if err else 'unsupported'}")


def main(args: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minop.kit.sandbox", description=__doc__)
    parser.add_argument("--read", action="append", default=[], help="readable directory or file")
    parser.add_argument("--write", action="append", default=[], help="writable directory")
    parser.add_argument("--cpu", type=int, default=10, help="CPU seconds (RLIMIT_CPU)")
    parser.add_argument("argv", nargs="+", help="the program and its arguments")
    opts = parser.parse_args(args)
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (opts.cpu, opts.cpu))
        confine(opts.read, opts.write)
    except OSError as e:
        print(f"minop.kit.sandbox: {e}", file=sys.stderr)
        sys.exit(125)
    os.execvp(opts.argv[0], opts.argv)


if __name__ == "__main__":
    main()
