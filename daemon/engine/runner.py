"""Where a run becomes model calls and file operations: its input, then each step in order.

`execute` reads as the whole story: load the input (or the scheduled items), then one loop over
the workflow's steps, each a registered `StepKind` given a `StepContext` and returning a
`StepResult` that the runner records. Only the runner changes the run's `RunContext`.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon import failpoints, metrics
from daemon.actions import ActionServices
from daemon.documents import Document, ReadLimits, read_document
from daemon.domain import ModelCall, Origin, Run
from daemon.engine.context import INPUT_KEY, RunContext
from daemon.engine.effects import Effects, recover
from daemon.engine.intake import Intake
from daemon.engine.journal import Journal
from daemon.engine.scanned import transcribe
from daemon.engine.shared import SharedFiles
from daemon.errors import GristmillError, InputError, LeaseLost, ModelUnavailable, SkipRun
from daemon.files.hashing import sha256_bytes
from daemon.llm import images
from daemon.llm.ask import Asker
from daemon.llm.base import ModelBackend, ModelInfo
from daemon.llm.calibration import TokenCalibration
from daemon.settings import Settings
from daemon.steps import StepContext
from daemon.store import RunStore
from daemon.store.redact import redact_call, redact_outputs
from daemon.words import count
from daemon.workflow import Step, Workflow
from daemon.workflow.templates import file_scope

# A scheduled run's `now` (in its time zone), `items` and document, read when it starts.
ScheduledScope = Callable[[Workflow, datetime], tuple[datetime, list[dict[str, Any]], str | None]]


class Runner:
    """Executes one claimed run; raises to say how it ended when it did not succeed."""

    def __init__(
        self,
        *,
        workflows: Callable[[], Mapping[str, Workflow]],
        store: RunStore,
        backend: ModelBackend,
        intake: Intake,
        settings: Settings,
        post: Callable[[str, dict[str, Any]], None],
        scheduled: ScheduledScope | None = None,
        journal: Journal | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.workflows, self.store, self.backend, self.intake = workflows, store, backend, intake
        self.settings, self.post, self.scheduled, self.clock = settings, post, scheduled, clock
        self.shared = SharedFiles(store, workflows, max_attempts=settings.max_attempts)
        self.calibration = TokenCalibration()  # what this process learns of each model's tokenizer
        # Marks the waits outside this process (model calls, the extraction child): see engine/takeover.py.
        self.journal = journal or Journal(None, "")

    def execute(self, run: Run, owner: str) -> dict[str, Any]:
        """Run every step not already done by an earlier attempt; return the outputs to keep.

        A dry run (`run.dry_run`, whichever worker claims it) moves and writes nothing.
        """
        workflow = self.workflows().get(run.workflow)
        if workflow is None:
            raise SkipRun(f"workflow '{run.workflow}' is no longer loaded")
        ctx = self._start(run, workflow, run.dry_run)
        try:
            for step in workflow.steps:
                if not ctx.done(step):
                    if ctx.unsaved and step.kind.calls_model:
                        # Stored before a model call, which may be slow to redo after a crash; a route or
                        # write stores them with its intent, and the finish stores the rest.
                        self._save(ctx, owner, ctx.outputs)
                    self._run_step(ctx, step, owner)
                ctx.expose(step)
        except ModelUnavailable:
            raise  # queued again with its attempt refunded: the full outputs are needed to resume
        except Exception as exc:
            final = isinstance(exc, SkipRun) or run.attempts >= run.max_attempts
            if workflow.record == "metadata" and final:
                self.store.save_outputs(run.id, owner, _metadata_only(workflow, ctx.outputs))
            raise
        # Full outputs were stored while running so a crash can resume; what stays is the record setting's.
        return _metadata_only(workflow, ctx.outputs) if workflow.record == "metadata" else ctx.outputs

    def _start(self, run: Run, workflow: Workflow, dry_run: bool) -> RunContext:
        """The run's context: an earlier attempt's outputs, and its input read (or its items collected)."""
        # A route or write step interrupted by a crash left an intent: finish it from disk or redo it.
        outputs, finished = recover(dict(run.outputs))
        now = self.clock()
        scope = {
            "run": {"id": run.id, "workflow": run.workflow, "started_at": now.isoformat()},
            "now": now,
            "items": run.context.get("items", []),
        }
        ctx = RunContext(run, workflow, dry_run, scope, outputs=outputs, finished_intents=finished)
        ctx.file_path = _current_path(run, workflow, {**outputs, **finished})
        # What the trigger adds (a mail's subject, a hook's JSON body), under the names its kind reserves.
        scope.update(workflow.trigger.kind.template_scope(run.context, ctx.file_path))
        if ctx.file_path is not None:
            scope["file"], ctx.text, ctx.images, read = self._read(run, workflow, ctx.file_path, fresh=not outputs)
            ctx.note_input(read)  # scanned pages and who read them
            if scope["file"]["truncated"]:  # cut at GRISTMILL_MAX_CHARS: the record says so, and how much
                ctx.note_cut(scope["file"]["meta"].get("chars", len(ctx.text or "")))
        elif not workflow.takes_file and self.scheduled is not None:
            # The items are read when the run starts, so a late or retried run sees what is new then.
            scope["now"], scope["items"], ctx.text = self.scheduled(workflow, now)
        return ctx

    def _run_step(self, ctx: RunContext, step: Step, owner: str) -> None:
        result = step.kind.run(step.spec, self._step_context(ctx, step, owner))
        ctx.record(step, result)
        if result.moved_to is not None:
            # Other workflows that take this file lose it now: each records which run took it, and where.
            self.shared.moved(ctx.run, result.moved_to)

    def _step_context(self, ctx: RunContext, step: Step, owner: str) -> StepContext:
        step_id = step.step_id

        def record_intent(intent: dict[str, Any]) -> None:
            # Not indexed for search (bookkeeping): the finish indexes the outputs it stores. On the
            # disk before the file is touched, so that after a power loss too `recover` knows the name.
            self._save(ctx, owner, {**ctx.outputs, step_id: intent}, index=False, durable=True)

        def asking() -> Asker:
            return self._asker(ctx.workflow, ctx.run, step_id, model=self._seeing(ctx.workflow) if ctx.images else None)

        effects = Effects(ctx.dry_run, record_intent, ctx.finished_intents.get(step_id))
        return StepContext(
            workflow=ctx.workflow, step_id=step_id, scope=MappingProxyType(ctx.scope), text=ctx.text,
            images=ctx.images, file_path=ctx.file_path,
            asking=asking,
            act=ActionServices(effects, self._chain, self.post, ctx.dry_run, tuple(self.settings.local_networks)),
            trigger_context=MappingProxyType(ctx.run.context),
        )  # fmt: skip  # (one field a line would hide the shape)

    def _save(
        self, ctx: RunContext, owner: str, outputs: dict[str, Any], *, index: bool = True, durable: bool = False
    ) -> None:
        """Store the outputs so far; LeaseLost when another worker owns the run now."""
        if not self.store.save_outputs(ctx.run.id, owner, outputs, index=index, durable=durable):
            raise LeaseLost(ctx.run.id)
        ctx.unsaved = False

    def _read(self, run: Run, workflow: Workflow, path: Path, *, fresh: bool) -> tuple[dict, str, tuple, dict]:
        """What templates see of the file, the text the model reads, its images, and how it was read."""
        info, data = self._load(run, path)
        digest = sha256_bytes(data)
        if fresh and run.trigger is Origin.FILE and run.sha256 and digest != run.sha256:
            self._requeue_changed(workflow, path)
        document = read_document(path, data, self._limits(workflow), waiting=lambda: self.journal.waiting(run.id))
        failpoints.hit("document_read", document.text)
        read: dict[str, Any] = {}
        if document.image_pages:
            document, read = self._read_scans(run, workflow, path, document)
        elif document.images:
            self._need_vision(workflow, f"{path.name} is an image")
        file = file_scope(
            path, size=info.st_size, sha256=digest, text=document.text, kind=document.kind, meta=document.meta,
            truncated=document.truncated, subfolder=run.context.get("subfolder", ""),
        )  # fmt: skip  # (the fields read as one record)
        return file, document.text, document.images, read

    def _load(self, run: Run, path: Path) -> tuple[os.stat_result, bytes]:
        """The file's status and bytes: opened once, never through a symbolic link, refused over the size limit."""
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError as exc:
            raise SkipRun(self.shared.why_gone(run, path) or f"{path} was removed before its run started") from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
                raise SkipRun(f"{path} is a symbolic link; gristmill does not follow links") from exc
            raise InputError(f"{path} cannot be read ({exc.strerror})") from exc
        try:
            info = os.fstat(fd)
            if info.st_size > self.settings.max_file_bytes:
                raise SkipRun(f"{path.name} is {info.st_size} bytes, over the limit of {self.settings.max_file_bytes}")
            return info, _read_all(fd, info.st_size)
        except OSError as exc:
            raise InputError(f"{path} cannot be read ({exc.strerror})") from exc
        finally:
            os.close(fd)

    def _limits(self, workflow: Workflow) -> ReadLimits:
        """How to read the file: a scan's pages rendered too, when a model will read the document."""
        plain, scanning = self._read_limits
        return scanning if any(step.kind.calls_model for step in workflow.steps) else plain

    @functools.cached_property
    def _read_limits(self) -> tuple[ReadLimits, ReadLimits]:
        # Settings are read once at start: both sets of limits are made once, not at every run.
        limits = self.settings.read_limits
        if not self.settings.scan_pages:
            return limits, limits
        return limits, dataclasses.replace(limits, scan_pages=self.settings.scan_pages)

    def _read_scans(self, run: Run, workflow: Workflow, path: Path, document: Document) -> tuple[Document, dict]:
        """Pages without a text layer, read by the workflow's vision model; their text joins the document."""
        model = self._seeing(workflow)
        if not workflow.vision_model and not self._can_see(model, unknown=False):  # unsure: the text pages only
            return self._unread_scans(workflow, path, document)
        self._need_vision(workflow, f"{path.name} has pages without a text layer")
        scanned = transcribe(self._asker(workflow, run, INPUT_KEY, model=model), document.images, document.image_pages)
        text = "\n\n".join(part for part in (document.text, scanned) if part)
        limit = self.settings.max_chars
        chars = document.meta.get("chars", len(document.text)) + len(text) - len(document.text)
        meta = document.meta | ({"chars": chars} if len(text) > limit or document.truncated else {})
        read = {"scanned_pages": list(document.image_pages), "read_by": model}
        if document.meta.get("scanned_pages_left_out"):
            read["scanned_pages_left_out"] = document.meta["scanned_pages_left_out"]
        cut = len(text) > limit or document.truncated
        read_all = dataclasses.replace(document, text=text[:limit], meta=meta, truncated=cut, images=(), image_pages=())
        return read_all, read

    def _unread_scans(self, workflow: Workflow, path: Path, document: Document) -> tuple[Document, dict]:
        """No model of the workflow can see: the text pages alone, or the run skipped as a scan, saying why."""
        if not document.text.strip():
            pages = document.meta.get("pages")
            raise SkipRun(
                f"{path.name} has no text layer ({count(pages, 'page') if isinstance(pages, int) else 'no text'}, "
                f"a scan?); nothing to send to the model (set `vision_model:` in workflow '{workflow.name}' to a "
                "vision model, e.g. llama3.2-vision, to have its pages read)"
            )
        unread = {"scanned_pages_unread": list(document.image_pages)}
        return dataclasses.replace(document, images=(), image_pages=()), unread

    def _seeing(self, workflow: Workflow) -> str:
        """The model that reads images for the workflow: `vision_model`, else its model."""
        return workflow.vision_model or workflow.model or self.settings.model

    def _can_see(self, model: str, *, unknown: bool = True) -> bool:
        """Whether `model` reads images; `unknown` when its server does not say (OpenAI-compatible ones)."""
        capabilities = self.backend.info(model).capabilities
        return unknown if capabilities is None else "vision" in capabilities

    def _need_vision(self, workflow: Workflow, what: str) -> str:
        """The workflow's image-reading model; the run is skipped, saying why, when it cannot see."""
        model = self._seeing(workflow)
        if not any(step.kind.calls_model for step in workflow.steps) or self._can_see(model):
            return model
        key = "vision_model" if workflow.vision_model else "model"
        raise SkipRun(
            f"{what} and model '{model}' cannot read images (it lacks the vision capability); set "
            f"`{key}:` in workflow '{workflow.name}' to a vision model, e.g. llama3.2-vision or gemma3"
        )

    def _requeue_changed(self, workflow: Workflow, path: Path) -> None:
        again, created = self.intake.file(workflow, path)
        where = f"queued again as run {again.id}" if created else f"run {again.id} has that content"
        raise SkipRun(f"{path.name} changed after it was queued; {where}")

    def _asker(self, workflow: Workflow, run: Run, step_id: str, *, model: str | None = None) -> Asker:
        def record(call: ModelCall) -> None:
            call = images.recordable(call)  # image data is never stored, only its digest
            kept = redact_call(call) if workflow.record == "metadata" else call
            # Stored with the run's next write, never later than the outputs that use its answer.
            self.store.defer_call(run.id, kept, attempt=run.attempts)
            metrics.model_call(run, kept)

        waiting = _Waiting(self.backend, lambda: self.journal.waiting(run.id))  # the journal: model calls wait outside
        return Asker(
            backend=waiting, record=record, model=model or workflow.model or self.settings.model,
            options=dict(workflow.options), step_id=step_id, about=f"run {run.id} ({workflow.name})",
            calibration=self.calibration,
        )  # fmt: skip  # (the fields read as one record)

    def _chain(self, name: str, path: Path) -> int | None:
        workflow = self.workflows().get(name)
        if workflow is None:
            raise GristmillError(f"the route says run workflow '{name}', which is not loaded; check its file")
        run, created = self.intake.file(workflow, path)
        return run.id if created else None


class _Waiting(ModelBackend):
    """A run's model calls, marked in its journal as waits outside this process."""

    def __init__(self, inner: ModelBackend, waiting: Callable[[], AbstractContextManager[Any]]) -> None:
        self.inner, self.url, self.waiting = inner, inner.url, waiting

    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        with self.waiting():
            return self.inner.chat(call, think=think)

    def list_models(self) -> list[str]:
        with self.waiting():
            return self.inner.list_models()

    def info(self, model: str) -> ModelInfo:
        with self.waiting():
            return self.inner.info(model)

    def window(self, model: str, options: dict[str, Any]) -> int:
        with self.waiting():
            return self.inner.window(model, options)

    def version(self) -> str | None:
        with self.waiting():
            return self.inner.version()


# O_NONBLOCK: a FIFO put where the file was does not hang the worker at open (reading it then fails).
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_all(fd: int, size: int) -> bytes:
    """The file's bytes to its end: one read when it is still `size` bytes (a short read is its end)."""
    chunks, want = [], size + 1
    while chunk := os.read(fd, want):
        chunks.append(chunk)
        if len(chunk) < want:
            break
        want = max(want, 1 << 20)  # it grew since it was measured: read on to its end
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _metadata_only(workflow: Workflow, outputs: dict[str, Any]) -> dict[str, Any]:
    """`record: metadata`: outputs of steps that may quote the document become digests."""
    return redact_outputs(outputs, {s.step_id for s in workflow.steps if s.kind.quotes_document})


def _current_path(run: Run, workflow: Workflow, outputs: dict[str, Any]) -> Path | None:
    """Where the run's file is now: an earlier attempt may already have moved it."""
    if run.input_path is None:
        return None
    current = Path(run.input_path)
    for step_id in workflow.step_ids:
        out = outputs.get(step_id)
        moved = isinstance(out, dict) and "move_to" in (out.get("action"), out.get("intent"))
        if moved and out.get("destination"):
            current = Path(out["destination"])
    return current
