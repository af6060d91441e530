"""The schema as SQLAlchemy Core tables; migrations/versions is its history and must match it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

from daemon.domain import RunStatus
from daemon.files import lossless
from daemon.roles import Role

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and read back as an aware UTC datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}; the store only takes aware datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class LosslessText(TypeDecorator[str]):
    """Text that may hold file names that are not valid UTF-8; they round-trip exactly (`lossless`)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else lossless.encode(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else lossless.decode(value)


class LosslessJSON(TypeDecorator[Any]):
    """JSON whose strings may hold file names that are not valid UTF-8.

    SQLite stores Python's `\\udcXX` escapes as they are; PostgreSQL's json type refuses a lone
    surrogate, so there each string takes the lossless form of `LosslessText` (and only there:
    walking every output on SQLite would cost for nothing).
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return _walk(value, lossless.encode) if dialect.name == "postgresql" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return _walk(value, lossless.decode) if dialect.name == "postgresql" else value


def _walk(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {change(k) if isinstance(k, str) else k: _walk(v, change) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, change) for v in value]
    return value


_STATUSES = ", ".join(f"'{status.value}'" for status in RunStatus)

_QUEUED = text("status = 'queued'")
_ENDED = text("finished_at IS NOT NULL")

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("input_path", LosslessText),
    Column("sha256", Text),
    Column("dedupe_key", LosslessText),
    Column("context", LosslessJSON, nullable=False, server_default="{}"),
    Column("outputs", LosslessJSON, nullable=False, server_default="{}"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer, nullable=False, server_default=text("3")),
    Column("error", LosslessText),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Column("not_before", UtcDateTime),
    Column("lease_owner", Text),
    Column("lease_expires_at", UtcDateTime),
    # What full-text search indexes besides `error` (daemon/store/searchtext.py), written by the
    # store with the values they come from. SQLite: the FTS5 table runs_fts, filled in batches
    # (store/searchindex.py); PostgreSQL: the GIN index ix_runs_search over an expression (both in
    # migrations 0003 and 0008, not here: SQLAlchemy has no virtual tables, and autogenerate skips
    # expression indexes).
    Column("search_name", Text),
    Column("search_text", Text),
    # A `trigger --dry-run`: moved and wrote nothing, and nothing later consumes it (see RunStore).
    Column("dry_run", Boolean(create_constraint=False), nullable=False, server_default=text("false")),
    CheckConstraint(f"status IN ({_STATUSES})", name="status"),
    UniqueConstraint("workflow", "dedupe_key"),
    Index(None, "status", "not_before", "id"),
    # Claims walk the queued runs oldest first; without this they pass every finished run on the way.
    Index("ix_runs_queued_id", "id", postgresql_where=_QUEUED, sqlite_where=_QUEUED),
    Index(None, "workflow", "created_at"),
    Index(None, "sha256"),
    # The dashboard: a workflow's runs newest first (keyset pages), and the overview's time windows.
    Index(None, "workflow", "id"),
    Index(None, "created_at"),
    # Runs that ended since a moment, by status (the daemon's progress line, `run --once`): the recent
    # ones only, where a count by status walked every run ever recorded.
    Index(None, "finished_at", "status", postgresql_where=_ENDED, sqlite_where=_ENDED),
    # Ids are shown to users; AUTOINCREMENT keeps SQLite from reusing one after a deletion.
    sqlite_autoincrement=True,
)

model_calls = Table(
    "model_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("step_id", Text),
    Column("attempt", Integer, nullable=False),
    Column("model", Text, nullable=False),
    Column("messages", JSON, nullable=False),
    Column("options", JSON, nullable=False),
    Column("format", JSON(none_as_null=True)),
    Column("answer", Text),
    Column("thinking", Text),
    Column("error", Text),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_duration_ns", BigInteger),
    Column("load_duration_ns", BigInteger),
    Column("prompt_eval_duration_ns", BigInteger),
    Column("eval_duration_ns", BigInteger),
    Column("wall_ms", Float),
    Column("started_at", UtcDateTime, nullable=False),
    Column("server", Text),  # the configured server that answered (null: none was reached)
    Column("done_reason", Text),  # why the answer ended: "stop", or "length" when it was cut
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# A person's correction of one step's output; the run's own outputs are never changed by it.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("step_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # label, fields or text: what was corrected
    Column("change", JSON, nullable=False),  # what the person said: {"label": …} / {"fields": {…}} / {"text": …}
    Column("output", JSON, nullable=False),  # the step's output with this and earlier corrections applied
    Column("original", JSON(none_as_null=True)),  # the step's recorded output when it was corrected
    Column("author", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # What `correct --refile` did with the run's file: per route step its intent, then its outcome.
    Column("refile", JSON(none_as_null=True)),
    CheckConstraint("kind IN ('label', 'fields', 'text')", name="kind"),
    sqlite_autoincrement=True,
)

# A comparison of a candidate model with a workflow's recorded runs (`gristmill eval`).
evals = Table(
    "evals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", Text, nullable=False),
    Column("model", Text, nullable=False),  # the candidate
    Column("source", Text, nullable=False),  # replay: asked now; shadow: answers recorded beside live runs
    Column("created_at", UtcDateTime, nullable=False),
    Column("since", UtcDateTime),  # only runs that finished after this
    Column("run_limit", Integer),  # at most this many runs (the newest)
    Column("runs", Integer, nullable=False),  # runs looked at
    Column("agreement", Float),  # over every compared answer of every step; null when none was compared
    Column("figures", JSON, nullable=False),  # {"steps": {step id: figures}} (daemon/evals/figures.py)
    CheckConstraint("source IN ('replay', 'shadow')", name="source"),
    Index(None, "workflow", "id"),
    sqlite_autoincrement=True,
)

# A candidate's answer to one step of a live run (`shadow:` in a workflow): asked in a spare slot,
# acting on nothing, and kept apart from model_calls so `show`, `costs` and metrics count real calls.
shadow_calls = Table(
    "shadow_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("step_id", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("server", Text),
    Column("output", JSON(none_as_null=True)),  # the answer as the step would have taken it; null when invalid
    Column("invalid", Text),  # why the answer could not be used
    Column("answer", Text),  # the last raw answer
    Column("calls", Integer, nullable=False),  # 2 when the step's one re-ask was needed
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_duration_ns", BigInteger),
    Column("eval_duration_ns", BigInteger),
    Column("wall_ms", Float),
    Column("started_at", UtcDateTime, nullable=False),
    UniqueConstraint("run_id", "step_id", "model"),
    sqlite_autoincrement=True,
)

# Not tables of ours to compare or drop: FTS5's virtual table and the shadow tables it keeps
# (migration 0003), and the runs not yet in it (store/searchindex.py, migration 0008): SQLite only.
FTS_TABLE = "runs_fts"
FTS_SHADOWS = tuple(f"{FTS_TABLE}_{suffix}" for suffix in ("data", "idx", "docsize", "config"))
FTS_PENDING = "runs_fts_pending"


# PostgreSQL's full-text index: a GIN index over an expression, also managed by migration 0003.
PG_SEARCH_INDEX = "ix_runs_search"


def include_name(name: str | None, type_: str, _parent_names: object = None) -> bool:
    """Alembic's include_name hook: leaves out the full-text tables and index, which migrations 0003 and 0008 manage."""
    if type_ == "index":
        return name != PG_SEARCH_INDEX
    return not (type_ == "table" and name in (FTS_TABLE, *FTS_SHADOWS, FTS_PENDING))


_ROLES = ", ".join(f"'{role.value}'" for role in Role)

# One row per `gristmill run` process that ever worked on this database; its id is the lease owner
# of the runs it holds, so "runs in hand" is a query.
nodes = Table(
    "nodes",
    metadata,
    Column("id", Text, primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("role", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
    Column("stopped_at", UtcDateTime),
    CheckConstraint(f"role IN ({_ROLES})", name="role"),
)
