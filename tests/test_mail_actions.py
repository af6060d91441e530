"""Mail route actions against a real Dovecot: MOVE or its COPY fallback, flags, and idempotence after a crash."""

from __future__ import annotations

import pytest

from daemon.actions import ActionServices
from daemon.actions.mail import NO_MESSAGE, Flag, MoveToFolder
from daemon.engine.effects import Effects
from daemon.errors import MailboxRefused
from daemon.mail import ActionOutcome, flag, keep, mailbox, move_to_folder
from daemon.mail.context import mail_context
from daemon.steps import StepContext
from daemon.workflow import Workflow
from tests.dovecot import message
from tests.mail_support import PASSWORD_ENV, getenv_for, keys_in, spec_for

M1, M2 = "<m1.gristmill-test@example.org>", "<m2.gristmill-test@example.org>"


@pytest.fixture
def two(dovecot):
    """Two messages in INBOX; their keys as the watcher made them."""
    dovecot.append(message(1))
    dovecot.append(message(2))
    return [key for key, _ in keys_in(dovecot)]


def _act(server, action, *args):
    with mailbox(spec_for(server), getenv_for(server)) as client:
        return action(client, *args)


def test_move_uses_move_creates_the_folder_and_is_idempotent(dovecot, two):
    first = _act(dovecot, move_to_folder, two[0], "Invoices")
    assert (first.outcome, first.target, first.uid) == (ActionOutcome.DONE, "Invoices", two[0].uid)
    assert dovecot.message_ids("Invoices") == [M1]
    assert dovecot.message_ids("INBOX") == [M2]
    with dovecot.client() as client:
        assert "Invoices" in [name for _, _, name in client.list_sub_folders()]  # subscribed: mail programs show it
    again = _act(dovecot, move_to_folder, two[0], "Invoices")  # the run retried after a crash
    assert again.outcome is ActionOutcome.ALREADY
    assert dovecot.message_ids("Invoices") == [M1]


def test_without_move_it_copies_and_expunges_only_that_message(dovecot):
    dovecot.restart_with_capabilities(["MOVE"])
    dovecot.append(message(1))
    dovecot.append(message(2), flags=["\\Deleted"])  # a user's own mark: ours must not expunge it
    key = keys_in(dovecot)[0][0]
    result = _act(dovecot, move_to_folder, key, "Receipts")
    assert result.outcome is ActionOutcome.DONE
    assert dovecot.message_ids("Receipts") == [M1]
    remaining = dovecot.messages("INBOX")
    assert [(flags, mid) for flags, mid in remaining.values()] == [({"\\Deleted"}, M2)]


def test_a_crash_between_copy_and_expunge_is_finished_without_a_second_copy(dovecot, two):
    dovecot.restart_with_capabilities(["MOVE"])
    with dovecot.client() as client:  # what the crashed try left: the copy made, the original still there
        client.create_folder("Invoices")
        client.select_folder("INBOX")
        client.copy([two[0].uid], "Invoices")
    result = _act(dovecot, move_to_folder, two[0], "Invoices")
    assert result.outcome is ActionOutcome.ALREADY
    assert dovecot.message_ids("Invoices") == [M1]
    assert dovecot.message_ids("INBOX") == [M2]


def test_a_server_with_neither_move_nor_uidplus_is_refused_and_nothing_changes(dovecot, two):
    dovecot.restart_with_capabilities(["MOVE", "UIDPLUS"])
    with pytest.raises(MailboxRefused, match="neither MOVE nor UIDPLUS"):
        _act(dovecot, move_to_folder, two[0], "Invoices")
    assert dovecot.message_ids("INBOX") == [M1, M2]
    assert "Invoices" not in dovecot.folders()


def test_a_message_moved_away_by_someone_else_is_gone(dovecot, two):
    with dovecot.client() as client:
        client.create_folder("Elsewhere")
        client.select_folder("INBOX")
        client.move([two[0].uid], "Elsewhere")
    assert _act(dovecot, move_to_folder, two[0], "Invoices").outcome is ActionOutcome.GONE
    assert _act(dovecot, flag, two[0], "flagged").outcome is ActionOutcome.GONE
    assert dovecot.message_ids("Elsewhere") == [M1]


def test_after_a_uidvalidity_change_the_message_is_found_by_message_id(dovecot):
    dovecot.append(message(1), "Triage")
    dovecot.append(message(2), "Triage")
    old = keys_in(dovecot, "Triage")[1][0]
    dovecot.recreate("Triage")
    dovecot.append(message(9), "Triage")
    dovecot.append(message(2), "Triage")  # the same message, now UID 2 under a new UIDVALIDITY
    with mailbox(spec_for(dovecot, folder="Triage"), getenv_for(dovecot)) as client:
        result = move_to_folder(client, old, "Done")
    assert result.outcome is ActionOutcome.DONE
    assert dovecot.message_ids("Done") == [M2]
    assert dovecot.message_ids("Triage") == ["<m9.gristmill-test@example.org>"]


def test_flag_sets_system_flags_and_keywords_once(dovecot, two):
    assert _act(dovecot, flag, two[0], "flagged").outcome is ActionOutcome.DONE
    assert _act(dovecot, flag, two[0], "\\Flagged").outcome is ActionOutcome.ALREADY
    assert _act(dovecot, flag, two[0], "$Invoice").outcome is ActionOutcome.DONE
    assert _act(dovecot, flag, two[1], "Seen").target == "\\Seen"
    flags = {mid: f for f, mid in dovecot.messages().values()}
    assert flags == {M1: {"\\Flagged", "$Invoice"}, M2: {"\\Seen"}}


@pytest.mark.parametrize("name", ["deleted", "\\Deleted", "\\Recent", "two words", "a*"])
def test_flag_refuses_deleting_and_non_flags(dovecot, two, name):
    with pytest.raises(MailboxRefused):
        _act(dovecot, flag, two[0], name)
    assert all(f == set() for f, _ in dovecot.messages().values())


def test_keep_changes_nothing(dovecot, two):
    assert keep(two[0]).outcome is ActionOutcome.DONE
    assert dovecot.message_ids("INBOX") == [M1, M2]


# ----------------------------------------------------------- the route actions (daemon/actions/mail.py) on a run


def _route_ctx(server, key, *, dry_run: bool = False, intents: list | None = None) -> StepContext:
    """A route step of a mailbox workflow on `key`'s message, with real Effects recording its intents."""
    workflow = Workflow.model_validate({
        "name": "mail", "trigger": {"mailbox": spec_for(server).model_dump(exclude_defaults=True)},
        "steps": [{"route": {"default": {"flag": "flagged"}}}],
    })  # fmt: skip
    act = ActionServices(
        Effects(dry_run, record=(intents if intents is not None else []).append),
        chain=lambda name, path: None, post=lambda url, body: None, dry_run=dry_run,
    )  # fmt: skip
    return StepContext(
        workflow=workflow, step_id="route", scope={}, text=None, images=(), file_path=None,
        asking=lambda: None, act=act,  # type: ignore[arg-type]
        trigger_context=mail_context(key) if key else {},
    )  # fmt: skip


def test_the_mail_route_actions_record_their_intent_then_act_on_the_runs_message(dovecot, two, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)  # read_secret reads the variable the spec names
    intents: list[dict] = []

    done = Flag().perform("flagged", _route_ctx(dovecot, two[0], intents=intents))
    assert (done.destination, done.note) == ("\\Flagged", None)
    assert intents == [{"intent": "flag", "target": "flagged", "uid": two[0].uid}]  # recorded before the server
    again = Flag().perform("flagged", _route_ctx(dovecot, two[0]))
    assert again.note == "already done (by an earlier try of this run, or it was there already)"

    moved = MoveToFolder().perform("Invoices", _route_ctx(dovecot, two[1], intents=intents))
    assert (moved.destination, moved.note) == ("Invoices", None)
    assert intents[1] == {"intent": "move_to_folder", "target": "Invoices", "uid": two[1].uid}
    assert dovecot.message_ids("Invoices") == [M2]
    assert {mid: f for f, mid in dovecot.messages().values()} == {M1: {"\\Flagged"}}


def test_a_dry_run_or_a_run_without_a_message_touches_no_mailbox(dovecot, two, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    intents: list[dict] = []
    shown = Flag().perform("seen", _route_ctx(dovecot, two[0], dry_run=True, intents=intents))
    assert (shown.destination, shown.note) == ("\\Seen", None)  # what it would set, as the record shows flags
    assert MoveToFolder().perform("Invoices", _route_ctx(dovecot, two[0], dry_run=True)).destination == "Invoices"
    none = Flag().perform("seen", _route_ctx(dovecot, None, intents=intents))
    assert (none.destination, none.note) == (None, NO_MESSAGE)
    assert intents == []
    assert dovecot.message_ids("INBOX") == [M1, M2]
    assert all(f == set() for f, _ in dovecot.messages().values())
