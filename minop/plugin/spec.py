"""Every hook a minop plugin can implement, documented where it is declared.

A plugin is a module or object with functions named like these hooks and
decorated with ``@minop.hookimpl``; it is registered through the entry-point
group ``minop`` (``[project.entry-points.minop] myplugin = "my_pkg.hooks"``).

The core calls a resource's hooks only on the plugin that declared the
resource in ``minop_resources``, one implementation at a time, each in its
own thread with the resource's ``hook_timeout``: a plugin that raises or hangs
never stops another plugin or the watch loop.

Hooks must be idempotent: the core calls them again after errors, restarts,
child changes and resyncs, and ``Context.apply`` makes repeated calls cheap
(nothing is sent when the cluster already matches).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from minop.plugin.marker import hookspec

if TYPE_CHECKING:
    from minop.admission import AdmissionRequest, Validation
    from minop.context import Context
    from minop.resource import Resource
    from minop.settings import Settings

Status = Mapping[str, Any] | None


@hookspec
def minop_resources() -> list[Resource]:
    """Return the kinds this plugin owns, with what the core must know to run them.

    Called once at startup. Each :class:`minop.Resource` names its kind, its
    CRD, the kinds it creates (``children``) or only reads (``observes``),
    objects it merely references (``related``), its timers and retry limits.
    RBAC, the OLM bundle and the watches are all derived from this list.
    """


@hookspec
def minop_create(ctx: Context) -> Status:
    """A new object was seen (no last-handled spec yet).

    Create the children with ``ctx.apply(...)`` and return a dict merged into
    ``.status``. The core then records the handled spec, so a crash before
    that point calls ``minop_create`` again. Raise :class:`minop.TemporaryError`
    to retry later or :class:`minop.PermanentError` to give up until the spec
    changes.
    """


@hookspec
def minop_update(ctx: Context) -> Status:
    """The object needs reconciling again.

    ``ctx.cause`` says why: ``"spec"`` (``ctx.old``, ``ctx.new`` and
    ``ctx.diff`` describe the change), ``"child"`` (a child or observed object
    changed), ``"related"`` (a referenced object changed) or ``"resync"``
    (periodic). For every cause, apply the whole desired state: the diff is
    information, not a recipe. Status-only edits never call this hook.
    """


@hookspec
def minop_delete(ctx: Context) -> None:
    """The object is gone from the API server: a notification only.

    ``ctx.body`` is its last known state. At most once per object: there are
    no retries (there is nothing left to retry against), and a leader deposed
    right after the deletion may not have run it; use ``minop_finalize`` for
    cleanup that must happen.
    """


@hookspec
def minop_finalize(ctx: Context) -> None:
    """The object is being deleted and minop's finalizer still holds it.

    Implementing this hook makes the core add the finalizer
    ``minop.dev/finalizer`` to every object of the plugin's kinds. Release
    external state here; when every implementation returns, the finalizer is
    removed and Kubernetes deletes the object. Raising retries like the
    other hooks. Children with owner references need no finalizer: the
    garbage collector removes them.
    """


@hookspec
def minop_timer(ctx: Context) -> Status:
    """A timer of the resource fired (``ctx.timer`` names it).

    Called every ``Timer.interval`` seconds per existing object, after
    ``initial_delay``; cancelled when the object goes. Returns a status dict
    like the other hooks.
    """


@hookspec
def minop_validate(request: AdmissionRequest) -> Validation | None:
    """Admit or refuse an object before the API server stores it (a validating webhook).

    Called for the operations ``Resource.validating`` lists, on every replica, with
    ``request.object`` in the resource's own version (``kind.version``): the API
    server converts a request made in another served version first.
    Return a :class:`minop.Validation` with *every* error at once, each
    naming its field, and warnings for what is allowed but unwise; ``None`` admits.
    Use it only for what the CRD's schema and CEL rules cannot say (what a program
    will accept, other objects): what CEL can say stays in the CRD, where it also holds
    while the operator is down. Must be fast (the API server waits, see
    ``Webhook.timeout``) and free of side effects (``request.dry_run``). A hook that
    raises or runs out of time refuses the object with a message saying so (with
    ``failure_policy="Ignore"``: admits it, with a warning saying so).
    """


@hookspec
def minop_mutate(request: AdmissionRequest) -> Mapping[str, Any] | None:
    """Change an object before it is validated and stored (a mutating webhook).

    Called for the operations ``Resource.mutating`` lists. Return the whole object
    as it should be (a changed copy of ``request.object``), or ``None`` to leave it:
    the core sends the difference as a JSONPatch. Defaults that the schema can give
    belong in the schema. The API server may call it again after other webhooks
    changed the object: return the same result for the same input.
    """


@hookspec
def minop_convert(body: Mapping[str, Any], version: str) -> Mapping[str, Any]:
    """Return ``body`` expressed in ``version`` of its kind (a conversion webhook).

    Needed once a CRD serves more than one version (``minop.kit.crd.definition``
    with ``older=``). Conversion must be lossless both ways: a field one version
    lacks survives a round trip through it (``minop.kit.conversion`` keeps it in an
    annotation). ``metadata`` other than labels and annotations must not change; the
    core sets ``apiVersion``. Raise :class:`minop.ConversionError` naming
    the field when the object cannot be expressed in ``version``.
    """


@hookspec
def minop_startup(settings: Settings) -> None:
    """The operator is starting, before any watch: read settings, warm clients.

    Raising here disables the plugin (it is reported, and its resources are
    not served); other plugins start normally.
    """


@hookspec
def minop_shutdown() -> None:
    """The operator is stopping, after the last hook call finished."""
