"""What a plugin declares about the kinds it owns (returned by ``minop_resources``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CREATE, UPDATE, DELETE = "CREATE", "UPDATE", "DELETE"
OPERATIONS = (CREATE, UPDATE, DELETE)
FAIL, IGNORE = "Fail", "Ignore"


@dataclass(frozen=True)
class Kind:
    """A Kubernetes kind and how to reach it over the API."""

    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def label(self) -> str:
        """``plural.group`` as kubectl and RBAC name it (``pods`` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def __str__(self) -> str:
        return f"{self.kind}.{self.api_version}"


@dataclass(frozen=True)
class Timer:
    """Calls ``minop_timer`` every ``interval`` seconds while an object exists."""

    interval: float
    initial_delay: float = 0.0
    name: str = "timer"

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"Timer {self.name!r}: interval must be > 0, got {self.interval}")


@dataclass(frozen=True)
class Related:
    """Objects a custom resource only references, e.g. a user's Secret.

    ``names(body)`` returns the names (in the CR's namespace) the CR refers to.
    They are watched by name and cached as a content hash, never their data; a
    change re-queues every CR referring to them (cause ``related``).
    """

    kind: Kind
    names: Callable[[Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Webhook:
    """Declares that a resource has a validating or a mutating webhook
    (``Resource.validating`` / ``Resource.mutating``).

    ``failure_policy`` is what the API server does when the operator does not answer
    in ``timeout`` seconds: ``Fail`` refuses the request (safe, but blocks users while
    no replica is up: run 2 replicas with a PodDisruptionBudget), ``Ignore`` admits it
    unchecked (right for checks the reconcile re-does anyway).
    """

    operations: tuple[str, ...] = (CREATE, UPDATE)
    failure_policy: str = FAIL
    timeout: int = 10

    def __post_init__(self) -> None:
        bad = [o for o in self.operations if o not in OPERATIONS]
        if bad or not self.operations:
            raise ValueError(f"Webhook.operations: expected some of {OPERATIONS}, got {bad}")
        if self.failure_policy not in (FAIL, IGNORE):
            raise ValueError(f"Webhook.failure_policy: Fail or Ignore, not {self.failure_policy!r}")
        if not 1 <= self.timeout <= 30:  # the API server's own bounds
            raise ValueError(f"Webhook.timeout: 1..30 seconds, got {self.timeout}")


@dataclass(frozen=True)
class Resource:
    """A kind a plugin owns, and everything the core must know to run it."""

    kind: Kind
    # The CustomResourceDefinition (see minop.kit.crd); None for kinds owned elsewhere.
    crd: Mapping[str, Any] | None = None
    # Kinds created through Context.apply: watched by minop's label, re-queue the owner.
    children: tuple[Kind, ...] = ()
    # Kinds only read (e.g. the Pods of a child Deployment), watched the same way.
    observes: tuple[Kind, ...] = ()
    related: tuple[Related, ...] = ()
    timers: tuple[Timer, ...] = ()
    # TemporaryError / unexpected-exception tries before the object is Degraded.
    max_tries: int = 10
    hook_timeout: float = 60.0
    # Top-level fields whose changes are the "spec" for diffs and last-handled state.
    spec_fields: tuple[str, ...] = ("spec",)
    # Operand images by purpose, e.g. {"memcached": "..."}: OLM relatedImages.
    images: Mapping[str, str] = field(default_factory=dict)
    # Valid example objects (OLM alm-examples, docs).
    examples: tuple[Mapping[str, Any], ...] = ()
    # Further RBAC PolicyRules the plugin's hooks need beyond what is derived.
    extra_rules: tuple[Mapping[str, Any], ...] = ()
    # Admission webhooks calling the plugin's minop_validate / minop_mutate (minop.webhook).
    validating: Webhook | None = None
    mutating: Webhook | None = None

    @property
    def versions(self) -> list[str]:
        """Every version the CRD serves; more than one needs ``minop_convert``."""
        if self.crd is None:
            return [self.kind.version]
        return [v["name"] for v in self.crd["spec"]["versions"] if v.get("served", True)]

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"{self.kind}: max_tries must be >= 1, got {self.max_tries}")
        if self.hook_timeout <= 0:
            raise ValueError(f"{self.kind}: hook_timeout must be > 0")
