"""Route actions on the run's message in its mailbox: `move_to_folder: NAME` and `flag: NAME`.

They act on the message the run was queued for (its key is in the run's context), over a
connection opened for the action from the workflow's own trigger. Crash-safe like file moves: the
intent is recorded before the server is asked, and an action done again after a crash finds what
the interrupted try did (`daemon/mail/actions.py`), so a message ends in exactly one folder.
A mail server that is away is an outage: the run waits with backoff and uses up no attempt.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from imapclient import IMAPClient

from daemon import failpoints
from daemon.actions.base import Done, RouteAction
from daemon.mail import actions as imap
from daemon.mail.connection import mailbox
from daemon.mail.context import message_key
from daemon.mail.keys import MessageKey
from daemon.mail.spec import FolderName, MailboxSpec, MailFlag, imap_flag
from daemon.settings import read_secret
from daemon.steps import KeyPath, StepContext
from daemon.workflow import Workflow
from daemon.workflow.fields import problem

NO_MESSAGE = "this run has no message from the mailbox (it was started by hand on a file); the mailbox was not touched"
_NOTES = {
    imap.ActionOutcome.ALREADY: "already done (by an earlier try of this run, or it was there already)",
    imap.ActionOutcome.GONE: "the message is no longer where it was (moved or deleted by someone else); nothing done",
}


class MailAction(RouteAction):
    """An action on the run's message; only in a workflow whose trigger is a mailbox."""

    needs_file = False  # it acts on the message, not on the spooled .eml

    def check(self, workflow: Workflow, at: KeyPath) -> None:
        if not isinstance(workflow.trigger.spec, MailboxSpec):
            # pydantic fills in only {name} and {kind}; other braces are shown as written, not unescaped
            raise problem("action", "{name} acts on a message in a mailbox, and this workflow's trigger is {kind}; "
                          "use it in a workflow with trigger: {mailbox: …}", at, name=self.name,
                          kind=workflow.trigger.kind.name)  # fmt: skip

    def perform(self, target: Any, ctx: StepContext) -> Done:
        key = message_key(ctx.trigger_context)
        if key is None:
            return Done(None, note=NO_MESSAGE)
        if ctx.act.dry_run:
            return Done(self.shown(target))
        # Recorded first: after a crash the step runs again, and the action finds what was done.
        ctx.act.effects.note({"intent": self.name, "target": target, "uid": key.uid})
        failpoints.hit("after_intent")
        with mailbox(ctx.workflow.trigger.spec, read_secret) as client:
            result = self.act(client, key, target)
        return Done(result.target, note=_NOTES.get(result.outcome))

    def shown(self, target: Any) -> str:
        """What the action's destination reads as in the run's record."""
        return str(target)

    @abstractmethod
    def act(self, client: IMAPClient, key: MessageKey, target: Any) -> imap.MailActionResult:
        """Do it on the server; finding it already done is fine (the step may run again after a crash)."""


class MoveToFolder(MailAction):
    """Move the message into a folder (created when missing): IMAP MOVE, else COPY + expunge of that one message."""

    name = "move_to_folder"
    value = FolderName

    def act(self, client: IMAPClient, key: MessageKey, target: Any) -> imap.MailActionResult:
        return imap.move_to_folder(client, key, target)


class Flag(MailAction):
    """Set a flag (seen, answered, flagged, draft) or a keyword such as $Invoice on the message."""

    name = "flag"
    value = MailFlag

    def shown(self, target: Any) -> str:
        return imap_flag(target)

    def act(self, client: IMAPClient, key: MessageKey, target: Any) -> imap.MailActionResult:
        return imap.flag(client, key, target)
