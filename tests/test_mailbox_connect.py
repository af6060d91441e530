"""Connecting to a mailbox: TLS with a self-hosted CA, STARTTLS, `check`'s look, clear refusals, no password in logs."""

from __future__ import annotations

import logging

import pytest

from daemon.documents import ReadLimits, read_document
from daemon.errors import MailboxRefused, MailboxUnavailable
from daemon.mail import WatchState, check_mailbox
from tests.dovecot import message
from tests.mail_support import PASSWORD_ENV, Inbox, getenv_for, make_watcher, spec_for
from tests.support import free_port, wait_for


def _tls(server, **more):
    return spec_for(server, port=server.imaps_port, tls=True, tls_ca_file=server.ca_file, **more)


def test_tls_with_the_servers_own_ca_receives_mail(dovecot, tmp_path):
    dovecot.append(message(1))
    inbox = Inbox()
    watcher = make_watcher(dovecot, inbox, tmp_path, spec=_tls(dovecot)).start()
    try:
        wait_for(lambda: inbox.count() == 1, what="the message over TLS")
    finally:
        watcher.stop()


def test_starttls_with_the_servers_own_ca(dovecot):
    spec = spec_for(dovecot, tls=False, starttls=True, tls_ca_file=dovecot.ca_file)
    info = check_mailbox(spec, getenv_for(dovecot))
    assert info.label == f"alice@127.0.0.1:{dovecot.imap_port}/INBOX"


def test_check_reports_the_folder_and_what_the_server_offers(dovecot):
    dovecot.append(message(1))
    dovecot.append(message(2))
    info = check_mailbox(_tls(dovecot), getenv_for(dovecot))
    assert (info.messages, info.idle, info.move, info.uidplus) == (2, True, True, True)
    assert info.uidvalidity == dovecot.uidvalidity()


def test_an_untrusted_certificate_says_to_set_tls_ca_file(dovecot, tmp_path):
    spec = spec_for(dovecot, port=dovecot.imaps_port, tls=True)  # the system CAs do not know the test CA
    with pytest.raises(MailboxRefused, match="not trusted.*tls_ca_file"):
        check_mailbox(spec, getenv_for(dovecot))
    watcher = make_watcher(dovecot, Inbox(), tmp_path, spec=spec).start()
    try:
        wait_for(lambda: watcher.status.state is WatchState.DOWN, what="the refusal")
        assert "tls_ca_file" in watcher.status.reason
    finally:
        watcher.stop()


@pytest.mark.parametrize(
    ("getenv", "spec_changes", "error", "words"),
    [
        ({}.get, {}, MailboxRefused, f"{PASSWORD_ENV} .* is not set"),
        ({PASSWORD_ENV: "wrong"}.get, {}, MailboxRefused, f"refused the login of alice.*{PASSWORD_ENV}"),
        (None, {"folder": "Nowhere"}, MailboxRefused, "folder Nowhere does not exist"),
        (None, {"port": "free"}, MailboxUnavailable, "refused"),
    ],
)
def test_check_fails_in_one_sentence(dovecot, getenv, spec_changes, error, words):
    if spec_changes.get("port") == "free":
        spec_changes = {"port": free_port()}
    with pytest.raises(error, match=words) as caught:
        check_mailbox(spec_for(dovecot, **spec_changes), getenv or getenv_for(dovecot))
    assert "\n" not in str(caught.value) and dovecot.password not in str(caught.value)


def test_the_password_never_appears_in_logs_or_output(dovecot, tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger, imapclient's protocol trace included
    dovecot.append(message(1))
    inbox = Inbox()
    watcher = make_watcher(dovecot, inbox, tmp_path, spec=_tls(dovecot)).start()
    try:
        wait_for(lambda: inbox.count() == 1, what="the message")
    finally:
        watcher.stop()
    check_mailbox(spec_for(dovecot), getenv_for(dovecot))
    with pytest.raises(MailboxRefused):
        check_mailbox(spec_for(dovecot), {PASSWORD_ENV: dovecot.password + "x"}.get)
    assert any("LOGIN" in r.getMessage() for r in caplog.records)  # the trace was on, and redacted
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err, *(str(r.args) for r in caplog.records)):
        assert dovecot.password not in text


# ---------------------------------------------------------------- bad input reaches submit intact

NO_TEXT = b"""From: scanner@example.org\r
To: alice@example.org\r
Subject: Scan 0042\r
Message-ID: <scan-42@example.org>\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed; boundary="b1"\r
\r
--b1\r
Content-Type: image/png\r
Content-Disposition: attachment; filename="scan-0042.png"\r
Content-Transfer-Encoding: base64\r
\r
iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r
--b1--\r
"""

MALFORMED = (
    b"From: =?utf-8?q?broken <<not-an-address\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: Caf\xe9 \xff\xfe invoice =?x-unknown?b?!!!?=\r\n"
    b"Date: yesterday, probably\r\n"
    b"Message-ID:    <folded\r\n"
    b" -id@example.org>  (a comment)\r\n"
    b"this line has no colon\r\n"
    b"\r\n"
    b"Please pay invoice 17 by Friday.\r\n"
)


def _big_attachment(megabytes: int) -> bytes:
    import base64

    payload = base64.encodebytes(bytes(range(256)) * (megabytes * 1024 * 1024 // 256 * 3 // 4))
    return (
        b"From: big@example.org\r\nTo: alice@example.org\r\nSubject: The big file\r\n"
        b"Message-ID: <big@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n'
        b"--b2\r\nContent-Type: text/plain\r\n\r\nThe archive is attached.\r\n"
        b'--b2\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="archive.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload.replace(b"\n", b"\r\n") + b"--b2--\r\n"
    )


def test_bad_mail_reaches_submit_intact_and_the_extractor_gives_a_clear_outcome(dovecot, tmp_path):
    big = _big_attachment(30)
    assert len(big) > 30 * 1024 * 1024
    sent = [NO_TEXT, big, MALFORMED]
    for data in sent:
        dovecot.append(data)
    inbox = Inbox()
    watcher = make_watcher(dovecot, inbox, tmp_path).start()
    try:
        wait_for(lambda: inbox.count() == 3, timeout=60, what="the three hostile messages")
    finally:
        watcher.stop()
    got = [data for _, data in inbox.calls]
    assert got == sent
    keys = [key for key, _ in inbox.calls]
    assert [k.message_id for k in keys] == ["<scan-42@example.org>", "<big@example.org>", "<folded-id@example.org>"]

    limits = ReadLimits()
    no_text = read_document(tmp_path / "scan.eml", got[0], limits)
    assert "Subject: Scan 0042" in no_text.text and "scan-0042.png" in no_text.meta["attachments"]
    large = read_document(tmp_path / "big.eml", got[1], limits)
    assert "The archive is attached." in large.text and large.meta["attachments"] == ["archive.bin"]
    broken = read_document(tmp_path / "broken.eml", got[2], limits)
    assert "Please pay invoice 17 by Friday." in broken.text
