"""Mailbox and hook workflows without a server: their files' errors, template names and the two "once" keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.domain import Origin, RunStatus
from daemon.engine.intake import Intake
from daemon.errors import MailboxRefused
from daemon.mail.context import mail_scope, message_key
from daemon.mail.keys import key_of
from daemon.mail.source import MailQueue
from daemon.settings import Settings
from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from daemon.triggers import TriggerServices
from daemon.workflow import Workflow, load_workflow
from tests.dovecot import message
from tests.support import REPO
from tests.test_workflow_files import error_of, write

MAILBOX_HEAD = """\
name: t
trigger:
  mailbox: {host: imap.example.org, user: anna, password_env: MAIL_PASSWORD}
steps:
  - id: kind
    classify: {labels: [invoice, receipt]}
"""
ROUTE = """\
  - route:
      by: kind
      routes:
        invoice: {ACTION}
"""
WATCH_HEAD = MAILBOX_HEAD.replace(
    "  mailbox: {host: imap.example.org, user: anna, password_env: MAIL_PASSWORD}", "  watch: {path: ~/In}"
)
SCHEDULE_HEAD = MAILBOX_HEAD.replace(
    "  mailbox: {host: imap.example.org, user: anna, password_env: MAIL_PASSWORD}", "  schedule: {every: 1h}"
)
HOOK_HEAD = "name: t\ntrigger:\n  http: {path: /hooks/t, token_env: T_TOKEN}\nsteps:\n"

ERRORS = {
    "move_to_folder in a watch workflow": (
        WATCH_HEAD + ROUTE.replace("ACTION", "move_to_folder: Invoices"),
        10,
        "steps[1].route.routes.invoice.move_to_folder",
        "acts on a message",
    ),
    "flag in a hook workflow": (
        HOOK_HEAD + "  - route: {default: {flag: seen}}\n",
        5,
        "steps[0].route.default.flag",
        "this workflow's trigger is http",
    ),
    "move_to in a schedule workflow": (
        SCHEDULE_HEAD + ROUTE.replace("ACTION", "move_to: ~/x"),
        10,
        "steps[1].route.routes.invoice.move_to",
        "a schedule trigger gives none",
    ),
    "flag deleted": (
        MAILBOX_HEAD + ROUTE.replace("ACTION", "flag: deleted"),
        10,
        "steps[1].route.routes.invoice.flag",
        "never deletes mail",
    ),
    "step id mail": (
        MAILBOX_HEAD.replace("id: kind", "id: mail") + ROUTE.replace("kind", "mail").replace("ACTION", "keep: true"),
        5,
        "steps[0].id",
        "the step id 'mail' is taken",
    ),
    "step id input": (HOOK_HEAD + "  - id: input\n    summarise:\n", 5, "steps[0].id", "template variable"),
    "hook path": (
        HOOK_HEAD.replace("/hooks/t", "/webhook") + "  - summarise:\n",
        3,
        "trigger.http.path",
        "'/webhook' is not a hook path",
    ),
    "token as a value": (
        HOOK_HEAD.replace("T_TOKEN", "'s3cr3t token'") + "  - summarise:\n",
        3,
        "trigger.http.token_env",
        "is not an environment variable name",
    ),
    "host and host_env": (
        MAILBOX_HEAD.replace("user: anna", "host_env: MAIL_HOST, user: anna"),
        3,
        "trigger.mailbox.host",
        "exactly one of host and host_env",
    ),
    "no user": (MAILBOX_HEAD.replace("user: anna, ", ""), 3, "trigger.mailbox.user", "exactly one of user"),
    "existing": (
        MAILBOX_HEAD.replace("password_env", "existing: new, password_env"),
        3,
        "trigger.mailbox.existing",
        "'all', 'unseen' or 'none'",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_mistakes_name_line_and_key(tmp_path: Path, case: str) -> None:
    text, line, key, fragment = ERRORS[case]
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key), str(error)
    assert fragment in error.problem, error.problem


def test_copy_to_and_keep_work_on_the_stored_body(tmp_path: Path) -> None:
    hook = load_workflow(write(tmp_path, HOOK_HEAD + "  - route: {default: {copy_to: ~/Forms}}\n"))
    assert hook.takes_file and hook.destinations() == ["~/Forms"]
    flagged = MAILBOX_HEAD + ROUTE.replace("ACTION", "flag: $Invoice") + "      default: keep\n"
    mail = load_workflow(write(tmp_path, flagged))
    assert [action.name for _, action in mail.actions()] == ["flag", "keep"]


def test_a_mailbox_read_from_variables_resolves_or_says_which_is_missing(tmp_path: Path) -> None:
    text = MAILBOX_HEAD.replace("host: imap.example.org, user: anna", "host_env: MAIL_HOST, user_env: MAIL_USER")
    spec = load_workflow(write(tmp_path, text)).trigger.spec
    env = {"MAIL_HOST": "imap.example.org", "MAIL_USER": "anna"}
    assert spec.label == "$MAIL_USER@$MAIL_HOST:993/INBOX"
    assert spec.missing(env.get) == ["MAIL_PASSWORD"]
    resolved = spec.resolved(env.get)
    assert (resolved.host, resolved.user, resolved.url) == (
        "imap.example.org",
        "anna",
        "imap://anna@imap.example.org:993/INBOX",
    )
    with pytest.raises(MailboxRefused, match="MAIL_USER .* is not set"):
        spec.resolved({"MAIL_HOST": "x"}.get)
    plain = load_workflow(write(tmp_path, text.replace("password_env", "tls: false, password_env"))).trigger.spec
    with pytest.raises(MailboxRefused, match="in clear"):  # the loopback rule holds for a host from a variable too
        plain.resolved(env.get)


def test_templates_see_mail_with_every_name_even_in_a_manual_run() -> None:
    key = key_of("imap://anna@h:993/INBOX", "INBOX", 7, 42, message(1, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?="))
    from daemon.mail.context import mail_context

    context = mail_context(key, message(1, subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?="))
    scope = mail_scope(context)
    assert scope["subject"] == "Grüße" and scope["from"] == "Sender <sender@example.org>"
    assert scope["message_id"] == "<m1.gristmill-test@example.org>" and scope["uid"] == 42
    assert message_key(context) == key
    assert message_key({}) is None and set(mail_scope({})) == set(scope) and mail_scope({})["subject"] is None


# ---------------------------------------------------------------- "once": two keys


@pytest.fixture
def queue(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", workflows=tmp_path / "workflows")
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(engine)
    store = RunStore(engine)
    workflow: Workflow = load_workflow(write(tmp_path, MAILBOX_HEAD))
    services = TriggerServices(store, Intake(store, max_attempts=3), settings, lambda: {"t": workflow})
    yield MailQueue(services), workflow, store
    engine.dispose()


def test_the_same_message_id_anywhere_runs_once(queue) -> None:
    mail, workflow, store = queue
    data = message(1)
    assert mail.submit(workflow, data, key_of("imap://a@h:993/INBOX", "INBOX", 7, 1, data))
    # A restart, a rebuilt folder (new UIDVALIDITY), a copy in another folder with other headers:
    copied = b"Received: by relay\r\n" + data
    assert mail.submit(workflow, data, key_of("imap://a@h:993/INBOX", "INBOX", 7, 1, data))
    assert mail.submit(workflow, data, key_of("imap://a@h:993/INBOX", "INBOX", 8, 3, data))
    assert mail.submit(workflow, copied, key_of("imap://a@h:993/Archive", "Archive", 9, 5, copied))
    (run,) = store.history()
    assert (run.status, run.trigger) == (RunStatus.QUEUED, Origin.MAIL)
    assert run.dedupe_key == "message-id:<m1.gristmill-test@example.org>"
    assert Path(run.input_path).read_bytes() == data and run.input_path.endswith(".eml")
    assert run.context["mail"]["url"] == "imap://a@h:993/INBOX;UIDVALIDITY=7/;UID=1"


def test_the_same_place_runs_once_even_when_the_server_hands_over_other_bytes(queue) -> None:
    mail, workflow, store = queue
    first, second = message(2, message_id=False), message(2, message_id=False) + b"\r\n"
    assert mail.submit(workflow, first, key_of("imap://a@h:993/INBOX", "INBOX", 7, 2, first))
    # No Message-ID, so the identity is the hash of the bytes, which differ: the place recognises it.
    assert mail.submit(workflow, second, key_of("imap://a@h:993/INBOX", "INBOX", 7, 2, second))
    assert len(store.history()) == 1
    assert mail.submit(workflow, second, key_of("imap://a@h:993/INBOX", "INBOX", 7, 3, second))  # a new place
    assert len(store.history()) == 2


def test_a_message_too_large_is_recorded_skipped_once(queue) -> None:
    mail, workflow, store = queue
    key = key_of("imap://a@h:993/INBOX", "INBOX", 7, 4, message(4))
    for _ in range(2):
        mail.refuse(workflow, key, "it is 99 bytes, over the limit of 10 (GRISTMILL_MAX_FILE_BYTES)")
    (run,) = store.history()
    assert run.status is RunStatus.SKIPPED and run.input_path is None
    assert run.error == ("the message <m4.gristmill-test@example.org> was not read: it is 99 bytes, over the "
                         "limit of 10 (GRISTMILL_MAX_FILE_BYTES)")  # fmt: skip
    data = message(4)
    assert mail.submit(workflow, data, key_of("imap://a@h:993/INBOX", "INBOX", 7, 4, data))  # still not run
    assert len(store.history()) == 1


def test_the_readme_s_worked_flow_loads(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("name: support-desk") :]
    workflow = load_workflow(write(tmp_path, block[: block.index("```")]))
    assert workflow.trigger.kind.name == "http"
    assert [action.name for _, action in workflow.actions()] == ["webhook", "copy_to", "keep", "copy_to"]
