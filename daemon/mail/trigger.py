"""`trigger: {mailbox: {...}}`: each new message in an IMAP folder is one run on its `.eml`, never twice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.errors import MailboxError
from daemon.mail.connection import check_mailbox
from daemon.mail.context import CONTEXT_KEY, mail_scope
from daemon.mail.source import GetEnv, MailboxSource
from daemon.mail.spec import MailboxSpec
from daemon.settings import read_secret
from daemon.triggers.base import Finding, Level, TriggerKind, TriggerServices
from daemon.workflow import Workflow


class MailboxKind(TriggerKind):
    """One run per message; templates see `mail` (subject, from, to, date, message_id, folder, uid)."""

    name = "mailbox"
    Spec = MailboxSpec
    takes_file = True
    scope_names = frozenset({CONTEXT_KEY})

    def __init__(self, getenv: GetEnv = read_secret) -> None:
        self.getenv = getenv

    def source(self, services: TriggerServices) -> MailboxSource:
        return MailboxSource(services, getenv=self.getenv)

    def describe(self, spec: MailboxSpec) -> str:
        first = "" if spec.existing == "all" else f", existing: {spec.existing}"
        missing = spec.missing(self.getenv)
        state = f" (not watched: {', '.join(missing)} unset)" if missing else ""
        return f"mailbox {spec.label}{first}{state}"

    def template_scope(self, context: Mapping[str, Any], file: Path | None) -> Mapping[str, Any]:
        return {CONTEXT_KEY: mail_scope(context)}

    def diagnose(self, workflows: list[Workflow]) -> list[Finding]:
        """Each mailbox: its variables set, then logged in and its folder found (or why not)."""
        found: list[Finding] = []
        seen: dict[str, str] = {}
        for workflow in sorted(workflows, key=lambda w: w.name):
            spec: MailboxSpec = workflow.trigger.spec
            found.append(self._probe(workflow.name, spec))
            other = seen.setdefault(spec.label, workflow.name)
            if other != workflow.name:
                found.append(Finding(Level.WARNING, f"workflows {other} and {workflow.name} both watch mailbox "
                                     f"{spec.label}: each runs on every message, and a move by one hides the "
                                     "message from the other"))  # fmt: skip
        return found

    def _probe(self, name: str, spec: MailboxSpec) -> Finding:
        missing = spec.missing(self.getenv)
        if missing:
            names = ", ".join(missing)
            return Finding(Level.WARNING, f"workflow {name}: the mailbox is not watched until {names} "
                           f"{'is' if len(missing) == 1 else 'are'} set (the names come from its trigger)")  # fmt: skip
        try:
            info = check_mailbox(spec, self.getenv)
        except MailboxError as exc:
            return Finding(Level.FAILED, f"workflow {name}: {exc.message}")
        can = [word for word, has in (("IDLE", info.idle), ("MOVE", info.move), ("UIDPLUS", info.uidplus)) if has]
        return Finding(Level.OK, f"workflow {name}: mailbox {info.label} logged in, {info.messages} messages "
                       f"({', '.join(can) or 'no IDLE, MOVE or UIDPLUS'})")  # fmt: skip
