"""The one exception root and its data-carrying subclasses.

Every error a user can cause or meet is a `GristmillError`; its `str()` is one sentence that names
what went wrong and how to fix it. The CLI maps `exit_code` to the process exit status.
"""

from __future__ import annotations

import shlex
from pathlib import Path


class GristmillError(Exception):
    """Root of every error gristmill raises on purpose."""

    exit_code = 1
    # Whether trying the run again could end differently; False fails the run at once.
    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GristmillError):
    """Bad command-line usage or an invalid setting."""

    exit_code = 2


class SettingsError(UsageError):
    """The settings (environment or TOML file) are invalid."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class WorkflowError(UsageError):
    """A workflow file is invalid; names the file, the line and the key."""

    def __init__(self, path: Path, problem: str, line: int | None = None, key: str | None = None):
        self.path, self.problem, self.line, self.key = path, problem, line, key
        where = f"{path}" + (f", line {line}" if line else "")
        at = f", key '{key}'" if key else ""
        super().__init__(f"{where}{at}: {problem}")


class TemplateError(GristmillError):
    """A template failed to render at run time (undefined name, sandbox violation, ...)."""

    retryable = False


class UnsafePathError(GristmillError):
    """A rendered or given path would leave its declared folder, or is otherwise unusable."""

    retryable = False

    def __init__(self, message: str, path: str, base: Path | None = None) -> None:
        super().__init__(message)
        self.path, self.base = path, base


class FolderBlocked(GristmillError):
    """A file stands where a destination folder must be: trying again cannot help until someone moves it."""

    retryable = False

    def __init__(self, folder: Path, blocker: Path) -> None:
        where = "it is" if blocker == folder else f"{blocker} is"
        super().__init__(
            f"cannot put files into {folder}: {where} a file, not a folder; move that file away or change "
            "the destination in the workflow, then: gristmill retry --failed"
        )
        self.folder, self.blocker = folder, blocker


class Unavailable(GristmillError):
    """A service a run needs besides the model (a mail server) is away: the run waits, no attempt used."""


class ModelError(GristmillError):
    """Anything that went wrong talking to the model."""


class ModelUnavailable(ModelError):
    """The model server could not be reached or is overloaded; retry later, no attempt used.

    `retry_after`: seconds until a server that could take the call may be tried again, when the
    router knows it (the pool then waits that long instead of its own backoff).
    """

    def __init__(self, message: str, url: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.url, self.retry_after = url, retry_after


class ModelTimeout(ModelUnavailable):
    """A call got no answer (or, streaming, no token) within GRISTMILL_MODEL_TIMEOUT.

    An outage only while the server also fails a health probe; the router turns it into a
    `ModelError` (an attempt) when the server still answers.
    """


class NotAModelServer(ModelUnavailable):
    """The URL answers, but not as the configured kind of model server (an HTML page, 501, not JSON).

    Runs stay queued like in an outage; the message is one sentence with the fix, never the page.
    """


class ModelMissing(ModelError):
    """The server is up but does not have the model; the user must pull it."""

    def __init__(self, model: str, url: str = "", *, where: str | None = None, fix: str | None = None) -> None:
        where = where or f"the server at {url}"
        super().__init__(f"model '{model}' is not on {where}; {fix or f'run: gristmill pull {model}'}")
        self.model, self.url = model, url


class AnswerCut(ModelError):
    """The answer was cut at its token limit even after one re-ask with more room."""


class BadAnswer(ModelError):
    """The model answered, but not in a usable way, even after one re-ask; counts as an attempt."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class InputError(GristmillError):
    """The run's input cannot be used (vanished, unreadable, too large, not text)."""


class PermanentInputError(InputError):
    """The input can never be used as it is (a parser rejects it): the run fails without retrying."""

    retryable = False


class SkipRun(GristmillError):
    """The run should end as `skipped` with this reason rather than fail."""


class StoreError(GristmillError):
    """The run store failed (database locked beyond its timeout, disk full, ...): an outage, waited for."""

    # Waiting cannot help: the database file was deleted, replaced or is corrupt (the daemon stops).
    fatal = False


class DatabaseLost(StoreError):
    """The database file is gone, was replaced, or is not a (healthy) SQLite database."""

    fatal = True


class FolderUnavailable(Unavailable):
    """A destination folder cannot take a file now (disk full, quota, read-only): an outage of that folder."""

    def __init__(self, folder: Path, reason: str) -> None:
        super().__init__(f"the folder {folder} cannot take files: {reason}")
        self.folder, self.reason = folder, reason


class RunNotFound(UsageError):
    """No run has the given id."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"no run with id {run_id}; list runs with: gristmill runs")
        self.run_id = run_id


class RetryRefused(UsageError):
    """`retry` of a succeeded run: its record stays as it is; running the workflow again is a new run."""

    def __init__(self, run_id: int, workflow: str, file: str | None) -> None:
        again = f"gristmill trigger {workflow} {shlex.quote(file)}" if file else f"gristmill trigger {workflow}"
        super().__init__(
            f"run {run_id} succeeded, and retry never overwrites a finished record; to run {workflow} again: {again}"
        )
        self.run_id, self.workflow, self.file = run_id, workflow, file


class LeaseLost(GristmillError):
    """This worker no longer holds the run (its lease lapsed or it was released); it must stop."""

    def __init__(self, run_id: int) -> None:
        super().__init__(f"run {run_id} is no longer this worker's (its lease lapsed or it was released)")
        self.run_id = run_id


class InvalidTransition(GristmillError):
    """A run cannot move from its current status to the requested one."""

    def __init__(self, old: str, new: str, retry: bool = False) -> None:
        how = "by retry" if retry else "directly"
        super().__init__(f"a {old} run cannot become {new} {how}")
        self.old, self.new, self.retry = old, new, retry


class MailboxError(GristmillError):
    """A mailbox could not be reached, logged into or acted on; names the mailbox and the fix."""

    def __init__(self, message: str, mailbox: str = "") -> None:
        super().__init__(message)
        self.mailbox = mailbox


class MailboxUnavailable(MailboxError, Unavailable):
    """The mail server could not be reached or dropped the connection; an outage, retried with backoff."""


class MailboxRefused(MailboxError):
    """The mail server answered but refused (login, certificate, folder, missing capability); a user must act."""

    retryable = False
