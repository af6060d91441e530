"""Typed values that cross module boundaries: run statuses, runs, model calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED)


class Origin(StrEnum):
    FILE = "file"
    SCHEDULE = "schedule"
    MANUAL = "manual"
    MAIL = "mail"  # a message fetched from a mailbox, spooled as .eml
    HOOK = "hook"  # the body of an HTTP hook request, spooled


@dataclass(frozen=True)
class NewRun:
    """What a trigger asks the store to queue."""

    workflow: str
    trigger: Origin
    input_path: str | None = None
    sha256: str | None = None
    # Unique per workflow: sha256 for files, the tick for schedules; None = never deduplicated.
    dedupe_key: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 3
    dry_run: bool = False  # `trigger --dry-run`: never deduplicated, never consumed by later runs


@dataclass(frozen=True)
class Run:
    """A run as stored."""

    id: int
    workflow: str
    status: RunStatus
    trigger: Origin
    input_path: str | None
    sha256: str | None
    dedupe_key: str | None
    context: dict[str, Any]
    outputs: dict[str, Any]
    attempts: int
    max_attempts: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    not_before: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    dry_run: bool = False

    def file_now(self) -> str | None:
        """Where the run's file is by its record: its input path, or where a step of it moved the file."""
        current = self.input_path
        if self.dry_run:
            return current
        for out in self.outputs.values():
            moved = isinstance(out, dict) and "move_to" in (out.get("action"), out.get("intent"))
            if moved and out.get("destination"):
                current = out["destination"]
        return current


@dataclass
class ModelCall:
    """One request to the model and what came back; every field is recorded."""

    model: str
    messages: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    format: Any = None
    step_id: str | None = None
    started_at: datetime | None = None
    answer: str | None = None
    thinking: str | None = None
    error: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_duration_ns: int | None = None
    load_duration_ns: int | None = None
    prompt_eval_duration_ns: int | None = None
    eval_duration_ns: int | None = None
    wall_ms: float | None = None
    server: str | None = None  # the configured server that answered (set by the router)
    done_reason: str | None = None  # "stop", or "length" when the answer was cut at its limit
    # Set by the store when the call is recorded / read back.
    id: int | None = None
    attempt: int | None = None
