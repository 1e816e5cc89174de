"""The files a configuration names, checked before any nginx reads it: a tenant's
configuration may only name files of its pod (its mounts: our ConfigMap, its
ConfigMaps and Secrets, the scratch directories) and of the nginx image. This is
the first of two fences around the operator's `nginx -t` (the kernel's Landlock is
the second, ``minop.kit.sandbox``): it refuses, with a message naming the path,
what would otherwise fail as "permission denied" or, in a pod, "not found"."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Where the nginx image keeps its own files: relative includes, modules, html.
IMAGE_DIRS = ("/etc/nginx", "/usr/share/nginx", "/usr/lib/nginx", "/usr/local/nginx")
DEVICES = ("/dev/stdout", "/dev/stderr", "/dev/null")
# Directives whose arguments name files nginx opens when it loads the configuration
# (or when it serves): any directive named like these, from any module.
_NAMED = {
    "include", "load_module", "access_log", "error_log", "pid", "lock_file",
    "js_import", "js_include", "js_path", "perl_modules", "perl_require",
    "working_directory", "geoip_country", "geoip_city", "geoip_org", "geoip2",
}  # fmt: skip
_SUFFIXES = ("_file", "_path", "_certificate", "_certificate_key", "_crl", "_dhparam", "_key")
# Argument forms that are not files: log targets, inline data, parameters.
_NOT_A_FILE = re.compile(r"^(off|on|stderr)$|^(syslog:|memory:|data:|\w+=)")


class ForbiddenPath(ValueError):
    def __init__(self, message: str, file: str) -> None:
        super().__init__(message)
        self.file = file  # the key of our ConfigMap naming it: nginx.conf, server.conf


def check(files: Mapping[str, str], mounts: list[Mapping[str, Any]]) -> None:
    """Raise ForbiddenPath naming the first file of ``files`` (the generated
    configuration) that is neither in one of the pod's ``mounts`` nor the image's."""
    allowed = [m["mountPath"] for m in mounts] + list(IMAGE_DIRS)
    for name, text in files.items():
        for directive, arg in _file_arguments(text):
            if "$" in arg:  # resolved per request, in the pod
                continue
            path = posixpath.normpath(arg if arg.startswith("/") else f"/etc/nginx/{arg}")
            if path in DEVICES or any(path == a or path.startswith(a + "/") for a in allowed):
                continue
            raise ForbiddenPath(
                f'{directive} "{arg}": not a file of the pod (its ConfigMaps, Secrets and '
                f"scratch directories under {', '.join(sorted(allowed))}); nothing else is read",
                name,
            )


def _file_arguments(text: str) -> Iterator[tuple[str, str]]:
    for statement in _statements(text):
        directive, args = statement[0], statement[1:]
        if directive in _NAMED or directive.endswith(_SUFFIXES):
            if directive == "js_import" and "from" in args:  # js_import name from path
                args = args[args.index("from") + 1 :]
            for arg in args:
                if not _NOT_A_FILE.match(arg):
                    yield directive, arg


def _statements(text: str) -> Iterator[list[str]]:
    """Each directive with its arguments, as nginx's lexer reads them: words split by
    blanks, `;` `{` `}` ending a statement, `#` comments, quotes with escapes."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in ";{}":
            if words:
                yield words
            words = []
            i += 1
        elif ch in "\"'":
            word, i = _quoted(text, i)
            words.append(word)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}\"'":
                if text[i] == "\\":
                    i += 1
                elif text[i] == "$" and i + 1 < n and text[i + 1] == "{":
                    i = max(text.find("}", i), i)  # ${var}: braces of a variable
                i += 1
            words.append(text[start:i].replace("\\", ""))
    if words:
        yield words


def _quoted(text: str, i: int) -> tuple[str, int]:
    quote, out, i = text[i], [], i + 1
    while i < len(text) and text[i] != quote:
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i + 1
