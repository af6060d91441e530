"""Shadow mode: the model steps of each succeeded run asked of candidate models too, in spare slots only.

A workflow's `shadow: {model: CANDIDATE}` (or a list of them) puts each of its succeeded runs on
this lane. A shadow call starts only while no queued run is due and fewer runs are in flight than
there are model slots, and it takes a slot only if one is free at that moment, so it never holds a
slot a queued or running run could use (a run that arrives while it is in flight may share the
server with it for that one call). It asks the recorded question again through the step kind,
acts on nothing, and records the answer as a shadow call (`shadow_calls`), which `show`, `costs`
and the metrics leave out and `gristmill eval --shadow` compares. The backlog lives in memory: runs
that succeed while the daemon is stopped, or that were waiting when it stopped, are not shadowed
(`gristmill eval --model` asks about the whole history).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from daemon.domain import Run
from daemon.errors import GristmillError, ModelUnavailable
from daemon.evals.candidate import ask_case
from daemon.evals.questions import case_of
from daemon.evals.values import Case
from daemon.llm.base import ModelBackend
from daemon.llm.router import Router
from daemon.store import RunStore
from daemon.store.evals import ShadowStore, has_due_runs
from daemon.workflow import Step, Workflow

log = logging.getLogger("gristmill")

BACKLOG = 10_000  # runs waiting for their shadow calls; beyond it the oldest are left out
SPARE_POLL = 0.5  # seconds between looks for a spare slot while shadow work waits


class ShadowLane:
    """One thread asking shadow candidates, only when the daemon's own runs leave a slot free."""

    def __init__(
        self, store: RunStore, backend: Router, workflows: Callable[[], Mapping[str, Workflow]], *,
        slots: int, busy: Callable[[], int], clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.store, self.backend, self.workflows = store, backend, workflows
        self.slots, self.busy, self.clock = slots, busy, clock
        self.answers = ShadowStore(store.engine)
        self._queue: deque[int] = deque(maxlen=BACKLOG)
        self._bell = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._missing: set[str] = set()  # candidates the server lacks, said once each

    def offer(self, run: Run) -> None:
        """A run succeeded: queue it when its workflow shadows candidates."""
        workflow = self.workflows().get(run.workflow)
        if workflow is not None and workflow.shadow:
            self._queue.append(run.id)
            self._bell.set()

    def start(self) -> None:
        """Work the lane on a thread of its own."""
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop taking shadow work; a call in flight is abandoned, not waited for."""
        self._stop.set()
        self._bell.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> int:
        """`run --once`: ask what is waiting now, while slots are spare; how many runs are left unasked."""
        while self._queue and not self._stop.is_set():
            if not self._serve(self._queue[0], wait=False):
                break
            self._queue.popleft()
        return len(self._queue)

    def _work(self) -> None:
        while not self._stop.is_set():
            if not self._queue:
                self._bell.wait()
                self._bell.clear()
                continue
            try:
                if self._serve(self._queue[0], wait=True):
                    self._queue.popleft()
            except Exception:  # a failing database or a bug must not end the lane
                log.exception("shadow mode could not ask about run %d; leaving it out", self._queue[0])
                self._queue.popleft()

    def _serve(self, run_id: int, *, wait: bool) -> bool:
        """Ask each candidate each comparable step of the run; False when it had to stop for lack of a slot."""
        run = self.store.get(run_id)
        workflow = self.workflows().get(run.workflow)
        if workflow is None:
            return True
        calls, done = self.store.calls(run.id), self.answers.answered(run.id)
        for shadow in workflow.shadow:
            for step in (s for s in workflow.steps if s.kind.comparable):
                if (step.step_id, shadow.model) in done or shadow.model in self._missing:
                    continue
                case = case_of(run, step.step_id, calls, None)
                if isinstance(case, Case) and not self._ask(step, shadow.model, case, wait=wait):
                    return False
        return True

    def _ask(self, step: Step, model: str, case: Case, *, wait: bool) -> bool:
        while not self._stop.is_set():
            if self._spare():
                with self.backend.spare_slot() as inner:
                    if inner is not None:
                        self._record(step, model, case, inner)
                        return True
            if not wait:
                return False
            self._stop.wait(SPARE_POLL)
        return False

    def _spare(self) -> bool:
        """Fewer runs in flight than slots, and no queued run due: a slot nobody else could use now."""
        return self.busy() < self.slots and not has_due_runs(self.store.engine, self.clock())

    def _record(self, step: Step, model: str, case: Case, backend: ModelBackend) -> None:
        started = self.clock()
        try:
            answer = ask_case(step.kind, step.spec, backend, model, case)
        except ModelUnavailable as exc:
            log.info("shadow call to %s for run %d left out: %s", model, case.run_id, exc.message)
            return
        except GristmillError as exc:  # the candidate is not on the server
            self._missing.add(model)
            log.warning("shadow mode stops asking %s: %s", model, exc.message)
            return
        self.answers.record(answer, started_at=started)
