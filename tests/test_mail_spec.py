"""The mailbox spec's checks, message keys and the cursor file: no server needed."""

from __future__ import annotations

import hashlib
import logging

import pytest
from pydantic import ValidationError

from daemon.mail import Cursor, FileCursor, MailboxSpec, imap_flag
from daemon.mail.keys import key_of, message_id_of, normalise_message_id
from daemon.settings import read_secret

BASE = {"host": "imap.example.org", "user": "anna@example.org", "password_env": "MAIL_PASSWORD"}


def _spec(**changes):
    return MailboxSpec.model_validate({**BASE, **changes}, context={"from_file": True})


def _error(**changes) -> str:
    with pytest.raises(ValidationError) as caught:
        _spec(**changes)
    return str(caught.value)


def test_defaults_and_names():
    spec = _spec()
    assert (spec.tls, spec.effective_port, spec.folder, spec.poll_interval, spec.idle) == (True, 993, "INBOX", 60, True)
    assert spec.label == "anna@example.org@imap.example.org:993/INBOX"
    assert spec.url == "imap://anna%40example.org@imap.example.org:993/INBOX"
    assert _spec(tls=False, starttls=True).effective_port == 143
    assert _spec(folder="Ablage/Rechnungen").url.endswith("/Ablage%2FRechnungen")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tls": False}, "password would cross the network in clear"),
        ({"starttls": True}, "starttls upgrades a plain connection, so it needs tls: false"),
        ({"tls": False, "tls_ca_file": "/etc/ca.pem", "host": "127.0.0.1"}, "tls_ca_file needs tls"),
        ({"password_env": "my password"}, "is not an environment variable name"),
        ({"password": "hunter2"}, "unknown key 'password'"),
        ({"poll_interval": 0.1}, "greater than or equal to 1"),
        ({"folder": ""}, "folder name is empty"),
        ({"port": 70000}, "less than or equal to 65535"),
    ],
)
def test_mistakes_are_refused_in_words(changes, words):
    assert words in _error(**changes)


def test_plain_text_is_allowed_on_loopback_only():
    assert not _spec(host="127.0.0.1", tls=False).encrypted
    assert _spec(host="localhost", tls=False).effective_port == 143
    assert "in clear" in _error(host="192.168.1.20", tls=False)


@pytest.mark.parametrize(
    ("name", "flag"),
    [("flagged", "\\Flagged"), ("\\Seen", "\\Seen"), ("ANSWERED", "\\Answered"), ("draft", "\\Draft"),
     ("$Junk", "$Junk"), ("Invoices", "Invoices")],
)  # fmt: skip
def test_flag_names(name, flag):
    assert imap_flag(name) == flag


@pytest.mark.parametrize("name", ["deleted", "\\Deleted", "\\Recent", "two words", "a(b", "x" * 65, ""])
def test_flags_that_are_refused(name):
    with pytest.raises(Exception, match="never deletes|not a system flag|not a flag IMAP can set"):
        imap_flag(name)


def test_message_ids_are_normalised_and_missing_ones_keyed_by_content():
    assert normalise_message_id("  <a@b>  ") == "<a@b>"
    assert normalise_message_id("<a\r\n @b> (comment)") == "<a@b>"
    assert normalise_message_id("no-brackets@b") == "no-brackets@b"
    assert normalise_message_id("   ") is None and normalise_message_id(None) is None
    assert normalise_message_id("<" + "x" * 600 + ">").startswith("<sha256:")
    data = b"Subject: no id\r\n\r\nhello\r\n"
    key = key_of("imap://u@h:993/INBOX", "INBOX", 7, 42, data)
    assert key.message_id is None and message_id_of(data) is None
    assert key.identity == "sha256:" + hashlib.sha256(data).hexdigest()
    assert key.url == "imap://u@h:993/INBOX;UIDVALIDITY=7/;UID=42"
    assert key_of("m", "INBOX", 7, 43, b"Message-ID: <x@y>\r\n\r\n").identity == "message-id:<x@y>"


def test_the_cursor_file_survives_and_a_broken_one_means_read_again(tmp_path, caplog):
    store = FileCursor.in_data_dir(tmp_path, "mail-triage")
    assert store.load() is None
    store.save(Cursor("imap://u@h:993/INBOX", 7, 42))
    assert FileCursor(tmp_path / "mail" / "mail-triage.cursor.json").load() == Cursor("imap://u@h:993/INBOX", 7, 42)
    assert [p.name for p in (tmp_path / "mail").iterdir()] == ["mail-triage.cursor.json"]  # no temporary left
    store.path.write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="gristmill"):
        assert store.load() is None
    assert "read again, nothing runs twice" in caplog.text


def test_secrets_are_read_through_the_settings_module(monkeypatch):
    monkeypatch.setenv("GM_TEST_SECRET", "s3cret")
    monkeypatch.setenv("GM_TEST_EMPTY", "")
    assert read_secret("GM_TEST_SECRET") == "s3cret"
    assert read_secret("GM_TEST_EMPTY") is None and read_secret("GM_TEST_UNSET_12345") is None


@pytest.mark.parametrize("action", ["flag: seen", "move_to_folder: Done"])
def test_a_mail_action_outside_a_mailbox_workflow_is_refused_at_its_key(tmp_path, action):
    from daemon.errors import WorkflowError
    from daemon.workflow import load_workflow

    path = tmp_path / "w.yaml"
    path.write_text(f"name: w\ntrigger: {{watch: {{path: /tmp/in}}}}\nsteps:\n  - route: {{default: {{{action}}}}}\n")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    name = action.split(":")[0]
    assert (caught.value.line, caught.value.key) == (4, f"steps[0].route.default.{name}")
    assert caught.value.problem == (
        f"{name} acts on a message in a mailbox, and this workflow's trigger is watch; "
        "use it in a workflow with trigger: {mailbox: …}"
    )
