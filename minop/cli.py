"""``python -m minop``: run the operator, print CRDs, list plugins."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import yaml

from minop import __version__, log
from minop.apierrors import ApiError
from minop.kube import Kube
from minop.kubeconfig import ConfigError
from minop.manager import Manager
from minop.packaging import bundle, chart, rbac, scaffold
from minop.packaging.bundle import BundleInfo
from minop.plugin.manager import PluginManager
from minop.preflight import StartError
from minop.resource import Resource
from minop.rest import user_agent
from minop.settings import (
    Settings,
    SettingsError,
    add_arguments,
    from_sources,
    namespace_flag,
    plugin_flag,
)
from minop.status import has_finalizer, remove_finalizer

logger = logging.getLogger("minop")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="minop",
        description="A minimal Kubernetes operator framework. Plugins are pip packages "
        "registering hooks in the entry-point group 'minop'.",
    )
    p.add_argument("--version", action="version", version=f"minop {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the operator",
        description="Run the operator. Every flag can also be set through the "
        "MINOP_* variable in brackets; a flag wins over its variable.",
    )
    add_arguments(run)
    crds = sub.add_parser("crds", help="print the CRDs of the installed plugins as YAML")
    rmf = sub.add_parser(
        "remove-finalizers",
        help="remove minop's finalizer from every object of the plugins' kinds "
        "(when the operator is gone for good; finalize hooks do not run)",
    )
    namespace_flag(rmf, "only these namespaces (default: all)")
    rmf.add_argument("--kubeconfig", help="kubeconfig file [KUBECONFIG]")
    plugins = sub.add_parser("plugins", help="list installed plugins and their kinds")
    bundle = sub.add_parser(
        "bundle", help="write the OLM bundle and the plain manifests for the installed plugins"
    )
    bundle.add_argument("--output", default="bundle", help="directory (default: bundle)")
    bundle.add_argument(
        "--manifests",
        default="config",
        help="directory for the plain (non-OLM) manifests (default: config)",
    )
    bundle.add_argument("--chart", help="directory for the Helm chart, e.g. charts/minop")
    bundle.add_argument(
        "--version", dest="bundle_version", default=__version__, help="operator version (semver)"
    )
    bundle.add_argument("--image", required=True, help="operator image reference")
    bundle.add_argument(
        "--created-at",
        required=True,
        help="ISO 8601 time of the version's commit (keeps output reproducible)",
    )
    bundle.add_argument(
        "--scorecard-image",
        required=True,
        help="operator-sdk's scorecard-test image for tests/scorecard/config.yaml, "
        "e.g. quay.io/operator-framework/scorecard-test:v1.42.2",
    )
    bundle.add_argument("--replaces", help="CSV this version upgrades, e.g. minop.v0.0.9")
    rbac = sub.add_parser("rbac", help="print least-privilege RBAC for the installed plugins")
    rbac.add_argument(
        "--service-account", default="minop", help="the operator's ServiceAccount (default: minop)"
    )
    rbac.add_argument(
        "--operator-namespace",
        default="minop-system",
        help="where the operator and its Lease run (default: minop-system)",
    )
    namespace_flag(rbac, "watched namespaces: Roles there instead of a ClusterRole")
    new = sub.add_parser(
        "new",
        help="scaffold a plugin package for a new kind (hooks, CRD, README, unit and e2e tests)",
    )
    new.add_argument("name", help="plugin name, e.g. greeting (the package: minop-greeting)")
    new.add_argument("--kind", required=True, help="the kind, CamelCase, e.g. Greeting")
    new.add_argument("--group", help="API group (default: <name>.example.com)")
    new.add_argument("--api-version", default="v1alpha1", help="(default: v1alpha1)")
    new.add_argument("--dir", help="where to write it (default: ./minop-<name>)")
    for s in (crds, rmf, plugins, bundle, rbac):
        plugin_flag(s, "only these plugins (repeatable) [MINOP_PLUGINS]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = from_sources(args)
    except SettingsError as e:
        print(f"minop: error: {e}", file=sys.stderr)
        return 2
    log.setup(settings.log_format, settings.log_level)
    if args.command == "run":
        return run(settings)
    if args.command == "crds":
        return print_crds(settings)
    if args.command == "plugins":
        return list_plugins(settings)
    if args.command == "bundle":
        info = BundleInfo(
            version=args.bundle_version,
            image=args.image,
            created_at=args.created_at,
            scorecard_image=args.scorecard_image,
            replaces=args.replaces,
        )
        by_plugin: dict[str, list[Resource]] = {}
        for name, r in _plugins(settings).resources():
            by_plugin.setdefault(name, []).append(r)
        resources = [r for rs in by_plugin.values() for r in rs]
        try:
            contents = bundle.files(resources, info)
            helm = chart.files(by_plugin, info.version, info.image) if args.chart else {}
        except ValueError as e:
            print(f"minop bundle: error: {e}", file=sys.stderr)
            return 2
        bundle.write(Path(args.output), contents)
        bundle.write(Path(args.manifests), bundle.plain_manifests(resources, args.image))
        if args.chart:
            bundle.write(Path(args.chart), helm)
        return 0
    if args.command == "rbac":
        return print_rbac(settings, args.operator_namespace, args.service_account)
    if args.command == "new":
        return new_plugin(args)
    if args.command == "remove-finalizers":
        return remove_finalizers(settings)
    parser().print_help()
    return 0


def new_plugin(args: argparse.Namespace) -> int:
    try:
        spec = scaffold.Spec(
            args.name, args.kind, args.group or f"{args.name}.example.com", args.api_version
        )
        target = Path(args.dir or spec.project)
        scaffold.write(target, spec)
    except scaffold.ScaffoldError as e:
        print(f"minop new: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {target}/: pip install -e {target}, then python -m minop plugins")
    return 0


def _plugins(settings: Settings) -> PluginManager:
    pm = PluginManager(settings.plugins)
    pm.load_entry_points()
    pm.startup(settings)
    return pm


def print_crds(settings: Settings) -> int:
    docs = [dict(r.crd) for _, r in _plugins(settings).resources() if r.crd]
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


def print_rbac(settings: Settings, namespace: str, service_account: str) -> int:
    resources = [r for _, r in _plugins(settings).resources()]
    docs = rbac.manifests(resources, "minop", namespace, service_account, settings.namespaces)
    sys.stdout.write(yaml.safe_dump_all(docs, sort_keys=False))
    return 0


def list_plugins(settings: Settings) -> int:
    pm = _plugins(settings)
    for info in pm.plugins.values():
        kinds = ", ".join(f"{r.kind.kind}.{r.kind.api_version}" for r in info.resources) or "-"
        state = "ok" if info.ok else f"DISABLED: {info.error}"
        print(f"{info.name}\t{info.version or '-'}\t{kinds}\t{state}")
    return 0 if all(i.ok for i in pm.plugins.values()) else 1


def remove_finalizers(settings: Settings) -> int:
    try:
        kube = Kube.from_env(settings.kubeconfig, agent=user_agent(__version__))
        removed = 0
        for _, resource in _plugins(settings).resources():
            for ns in settings.namespaces or (None,):
                items, _ = kube.list(resource.kind, ns)
                for obj in items:
                    if has_finalizer(obj):
                        remove_finalizer(kube, resource.kind, obj)
                        removed += 1
                        meta = obj["metadata"]
                        print(f"{resource.kind.kind} {meta.get('namespace', '')}/{meta['name']}")
    except (ConfigError, ApiError) as e:
        logger.error("%s", e)
        return 1
    logger.info("removed minop's finalizer from %d objects", removed)
    return 0


def run(settings: Settings) -> int:
    stop = threading.Event()  # the manager's own: a signal during start-up ends it too

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            logger.warning("second signal: exiting at once")
            os._exit(130)
        logger.info("signal %s: shutting down (again to exit at once)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        op = Manager(settings, stopping=stop)
        op.start()
    except (StartError, ConfigError) as e:
        logger.error("%s", e)
        return 1
    if not stop.is_set():
        op.begin(on_lost=lambda: os._exit(1))  # deposed: exit, as no thread can be stopped
        stop.wait()
    clean = op.stop()
    logger.info("stopped%s", "" if clean else " (hooks still running were abandoned)")
    return 0
