"""What a plugin declares about the kinds it owns (returned by ``minop_resources``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ValueError(f"{self.kind}: max_tries must be >= 1, got {self.max_tries}")
        if self.hook_timeout <= 0:
            raise ValueError(f"{self.kind}: hook_timeout must be > 0")
