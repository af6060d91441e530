"""What the dashboard reads: from the running daemon (`gristmill run`) or from the database alone (`gristmill web`)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.errors import GristmillError, WorkflowError
from daemon.health import Health
from daemon.settings import ServerConfig, Settings
from daemon.store import RunStore
from daemon.store.corrections import CorrectionStore
from daemon.triggers import WebMount
from daemon.web.queries import queued_by_workflow
from daemon.workflow import Workflow, load_workflows

PROBE_EVERY = 15.0  # seconds a probe of the model server is trusted by `gristmill web`


@dataclass(frozen=True)
class ServerState:
    """A model server as the overview shows it."""

    name: str
    url: str
    up: bool
    detail: str | None = None


class DashboardSource(ABC):
    """Everything the pages, /metrics and /healthz need; one per process."""

    def __init__(self, settings: Settings, store: RunStore) -> None:
        self.settings, self.store = settings, store
        self.corrections = CorrectionStore(store.engine)

    @property
    @abstractmethod
    def mode(self) -> str:
        """`daemon` (works on runs) or `web` (only reads the database)."""

    @abstractmethod
    def workflows(self) -> Mapping[str, Workflow]:
        """The loaded workflows by name."""

    @abstractmethod
    def workflow_errors(self) -> list[WorkflowError]:
        """Why the broken workflow files did not load."""

    @abstractmethod
    def servers(self) -> list[ServerState]:
        """Each model server, up or down."""

    @abstractmethod
    def health(self) -> Health:
        """The named checks /healthz runs."""

    def wake(self) -> None:  # noqa: B027 (a hook: the database alone has no workers to wake)
        """Runs were queued (a retry): let the workers look now."""

    def web_mounts(self) -> list[WebMount]:
        """Paths the trigger sources serve themselves on this server (hooks); none without the daemon."""
        return []

    def queue_depth(self) -> dict[str, int]:
        """Queued runs per workflow, zero for loaded workflows with none (for /metrics)."""
        depth = dict.fromkeys(self.workflows(), 0)
        return depth | queued_by_workflow(self.store.engine)

    def servers_up(self) -> dict[str, bool]:
        """Whether each model server is up (for /metrics)."""
        return {server.name: server.up for server in self.servers()}

    def _database_answers(self) -> bool:
        self.store.get_meta("health")  # raises StoreError when the database cannot be read
        return True


class DaemonSource(DashboardSource):
    """The running daemon's own view: its workflows, its outage gate, its watchdog checks."""

    mode = "daemon"  # type: ignore[assignment]

    def __init__(self, app: Any) -> None:
        super().__init__(app.settings, app.store)
        self.app = app

    def workflows(self) -> Mapping[str, Workflow]:
        return self.app.workflows

    def workflow_errors(self) -> list[WorkflowError]:
        return list(self.app.errors)

    def servers(self) -> list[ServerState]:
        return [ServerState(u.name, u.config.url, not u.gate.is_down, u.gate.reason) for u in self.app.router.upstreams]

    def health(self) -> Health:
        # The watchdog's checks once serving has built them; until then, the database.
        return getattr(self.app, "health", None) or Health({"database": self._database_answers})

    def wake(self) -> None:
        self.app.pool.wake()

    def web_mounts(self) -> list[WebMount]:
        mounts = (source.web_mount() for source in self.app.sources.values())
        return [mount for mount in mounts if mount is not None]


class DatabaseSource(DashboardSource):
    """`gristmill web`: workflows read from their folder when it changed, the server probed now and then."""

    mode = "web"  # type: ignore[assignment]

    def __init__(
        self, settings: Settings, store: RunStore, *, probe: Callable[[ServerConfig], str | None] | None = None
    ) -> None:
        super().__init__(settings, store)
        self._probe = probe or (lambda server: _probe_server(server, settings))
        self._lock = threading.Lock()
        self._loaded: tuple[Any, dict[str, Workflow], list[WorkflowError]] = (None, {}, [])
        self._probed: tuple[float, list[ServerState]] | None = None

    def workflows(self) -> Mapping[str, Workflow]:
        return self._load()[0]

    def workflow_errors(self) -> list[WorkflowError]:
        return self._load()[1]

    def servers(self) -> list[ServerState]:
        with self._lock:
            if self._probed is None or time.monotonic() - self._probed[0] > PROBE_EVERY:
                states = []
                for server in self.settings.model_servers.values():
                    problem = self._probe(server)
                    states.append(ServerState(server.name, server.url, problem is None, problem))
                self._probed = (time.monotonic(), states)
            return list(self._probed[1])

    def health(self) -> Health:
        return Health({"database": self._database_answers})

    def _load(self) -> tuple[dict[str, Workflow], list[WorkflowError]]:
        with self._lock:
            stamp = _folder_stamp(self.settings.workflows)
            if stamp != self._loaded[0]:
                loaded, errors = load_workflows(self.settings.workflows, servers=self.settings.model_servers)
                self._loaded = (stamp, loaded, errors)
            return self._loaded[1], self._loaded[2]


def _folder_stamp(folder: Path) -> Any:
    """Names, sizes and mtimes of the workflow files: a change means a reload."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return None


def _probe_server(server: ServerConfig, settings: Settings) -> str | None:
    """None when the server answers its kind's health probe, else why not (one sentence, never a web page)."""
    from daemon.llm.configured import guard, kind_of

    try:
        guard(server, settings)  # nothing goes to a server the privacy guard refuses
        backend = kind_of(server).backend(server, settings)
    except GristmillError as exc:
        return exc.message
    try:
        backend.version()
    except GristmillError as exc:
        return exc.message
    finally:
        backend.close()
    return None
