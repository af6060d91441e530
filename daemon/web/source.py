"""What the dashboard reads: from the running daemon (`gristmill run`) or from the database alone (`gristmill web`)."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from daemon.errors import WorkflowError
from daemon.health import Health
from daemon.metrics import SERVER
from daemon.settings import Settings
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
        gate = self.app.gate
        return [ServerState(SERVER, self.settings.ollama_url, not gate.is_down, gate.reason)]

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
        self, settings: Settings, store: RunStore, *, probe: Callable[[str], str | None] | None = None
    ) -> None:
        super().__init__(settings, store)
        self._probe = probe or _probe_ollama
        self._lock = threading.Lock()
        self._loaded: tuple[Any, dict[str, Workflow], list[WorkflowError]] = (None, {}, [])
        self._probed: tuple[float, ServerState] | None = None

    def workflows(self) -> Mapping[str, Workflow]:
        return self._load()[0]

    def workflow_errors(self) -> list[WorkflowError]:
        return self._load()[1]

    def servers(self) -> list[ServerState]:
        with self._lock:
            if self._probed is None or time.monotonic() - self._probed[0] > PROBE_EVERY:
                problem = self._probe(self.settings.ollama_url)
                self._probed = (
                    time.monotonic(),
                    ServerState(SERVER, self.settings.ollama_url, problem is None, problem),
                )
            return [self._probed[1]]

    def health(self) -> Health:
        return Health({"database": self._database_answers})

    def _load(self) -> tuple[dict[str, Workflow], list[WorkflowError]]:
        with self._lock:
            stamp = _folder_stamp(self.settings.workflows)
            if stamp != self._loaded[0]:
                loaded, errors = load_workflows(self.settings.workflows)
                self._loaded = (stamp, loaded, errors)
            return self._loaded[1], self._loaded[2]


def _folder_stamp(folder: Path) -> Any:
    """Names, sizes and mtimes of the workflow files: a change means a reload."""
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return None


def _probe_ollama(url: str) -> str | None:
    """None when the server answers /api/version, else why not (one short sentence)."""
    try:
        httpx.get(f"{url.rstrip('/')}/api/version", timeout=2.0).raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None
