"""The run store: the engine (db), the schema (tables), its migrations (migrate) and RunStore."""

from daemon.store.db import make_engine
from daemon.store.runs import RunStore, utcnow

__all__ = ["RunStore", "make_engine", "utcnow"]
