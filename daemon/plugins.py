"""The one registration surface: step kinds, trigger kinds, route actions and model-server kinds.

gristmill's own kinds register through it like any plugin (`daemon/builtins.py`). A package adds
its own with an entry point in the group `gristmill.plugins` whose object is a function
`register(registry)`:

    [project.entry-points."gristmill.plugins"]
    shout = "gristmill_shout:register"

The registry is filled once per process, the first time it is asked for; a plugin that fails to
load is an error naming it, not a traceback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from daemon.errors import UsageError

if TYPE_CHECKING:
    from daemon.actions import RouteAction
    from daemon.llm.servers import ServerKind
    from daemon.steps import StepKind
    from daemon.triggers import TriggerKind

ENTRY_POINT_GROUP = "gristmill.plugins"


class PluginError(UsageError):
    """A plugin could not be loaded, or registered a name that is already taken."""


class Registry:
    """What a workflow file may name: each kind by its key, in registration order."""

    def __init__(self) -> None:
        self.steps: dict[str, StepKind] = {}
        self.triggers: dict[str, TriggerKind] = {}
        self.actions: dict[str, RouteAction] = {}
        self.servers: dict[str, ServerKind] = {}
        self.plugins: list[str] = []  # entry points loaded, for `gristmill check`

    def add_step(self, kind: StepKind) -> StepKind:
        """Register a step kind under `kind.name` (its key in a workflow file)."""
        return _add(self.steps, kind, "step kind")

    def add_trigger(self, kind: TriggerKind) -> TriggerKind:
        """Register a trigger kind under `kind.name` (its key under `trigger:`)."""
        return _add(self.triggers, kind, "trigger kind")

    def add_action(self, action: RouteAction) -> RouteAction:
        """Register a route action under `action.name` (its key in a route)."""
        return _add(self.actions, action, "route action")

    def add_server(self, kind: ServerKind) -> ServerKind:
        """Register a model-server kind under `kind.name` (`kind = "…"` of a server)."""
        return _add(self.servers, kind, "model-server kind")


def _add(table: dict[str, Any], item: Any, what: str) -> Any:
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise PluginError(f"a {what} needs a name; {item!r} has none")
    if name in table:
        raise PluginError(f"the {what} '{name}' is registered twice; rename one of them")
    table[name] = item
    return item


_LOCK = threading.Lock()
_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The process's registry: the built-ins, then every installed plugin, loaded once."""
    global _REGISTRY
    if _REGISTRY is None:
        with _LOCK:
            if _REGISTRY is None:
                _REGISTRY = build_registry(entry_points(group=ENTRY_POINT_GROUP))
    return _REGISTRY


def build_registry(plugins: Iterable[EntryPoint] = ()) -> Registry:
    """A registry with the built-ins and the given entry points' registrations."""
    from daemon import builtins

    reg = Registry()
    builtins.register(reg)
    for point in sorted(plugins, key=lambda p: p.name):
        _load(reg, point.name, point.load)
    return reg


def _load(reg: Registry, name: str, load: Callable[[], Any]) -> None:
    try:
        register = load()
        register(reg)
    except PluginError:
        raise
    except Exception as exc:  # a third party's bug: name the plugin, keep the sentence short
        raise PluginError(f"the plugin '{name}' failed to load ({type(exc).__name__}: {exc}); "
                          "fix or uninstall it") from exc  # fmt: skip
    reg.plugins.append(name)
