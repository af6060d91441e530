"""The mailbox trigger end to end: the real daemon, the shipped mail-triage workflow, a real Dovecot, real SIGKILL.

Every message ends with one run, filed into the IMAP folder of its label, through restarts, a server
that goes away and comes back, copies of messages already run, and a crash in the middle of a move.
"""

from __future__ import annotations

import json
import signal
from email.message import EmailMessage

import pytest

from daemon.domain import RunStatus
from tests.dovecot import message
from tests.support import REPO, make_home, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs, read_store

BODIES = {
    "invoice": "Please pay this invoice. The invoice total is EUR 120, invoice number 7.",
    "newsletter": "This week's newsletter: news from the newsletter team. Unsubscribe from the newsletter below.",
    "personal": "Hi Alice, a personal note from me: shall we meet on Sunday? Personal regards, Bob",
}
FOLDERS = {"invoice": "Invoices", "newsletter": "Newsletters"}  # personal mail is flagged and stays


def mid(n: int) -> str:
    return f"<m{n}.gristmill-test@example.org>"


def labelled(n: int, label: str) -> bytes:
    return message(n, subject=f"{label.title()} number {n}", body=BODIES[label])


@pytest.fixture
def mail(tmp_path, standin, dovecot):
    """A home with the shipped mail-triage example pointed at the test Dovecot over TLS with its own CA."""
    home = make_home(tmp_path, standin.url)
    path = home.use_example("mail-triage.yaml")
    text = path.read_text()
    assert "    tls: true" in text
    path.write_text(text.replace("    tls: true", f"    tls: true\n    port: {dovecot.imaps_port}\n"
                                 f"    tls_ca_file: {dovecot.ca_file}"))  # fmt: skip
    home.extra_env.update(MAIL_HOST="127.0.0.1", MAIL_USER=dovecot.user, MAIL_PASSWORD=dovecot.password,
                          GRISTMILL_HTTP="off")  # fmt: skip
    daemons: list[Daemon] = []

    def start(**env: str) -> Daemon:
        daemon = Daemon(home, **env).start()
        daemons.append(daemon)
        return daemon

    home.start = start  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def done(home, count: int) -> bool:
    runs = all_runs(home)
    return len(runs) >= count and all(r.status.finished for r in runs)


def by_message_id(home) -> dict[str, list]:
    found: dict[str, list] = {}
    for run in all_runs(home):
        found.setdefault(run.context["mail"]["message_id"], []).append(run)
    return found


def test_nine_messages_filed_by_label_then_one_after_a_restart_and_a_copy_runs_no_more(mail, dovecot):
    labels = {n: label for n, label in enumerate(["invoice", "newsletter", "personal"] * 3, start=1)}
    for n, label in labels.items():
        dovecot.append(labelled(n, label))
    first = mail.start()
    wait_for(lambda: done(mail, 9), timeout=DEADLINE, what="nine runs")
    assert first.stop() == 0

    for label, folder in FOLDERS.items():
        assert dovecot.message_ids(folder) == sorted(mid(n) for n, lab in labels.items() if lab == label)
    inbox = {message_id: flags for flags, message_id in dovecot.messages().values()}
    assert inbox == {mid(n): {"\\Flagged"} for n, lab in labels.items() if lab == "personal"}
    runs = all_runs(mail)
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED} and {r.trigger.value for r in runs} == {"mail"}
    assert {r.outputs["kind"]["label"] for r in runs} == {"invoice", "newsletter", "personal"}
    summaries = sorted((mail.root / "Documents" / "Mail summaries").iterdir())
    assert len(summaries) == 9
    one = next(p for p in summaries if p.name.endswith("invoice-number-1.md")).read_text()
    assert one.startswith("# Invoice number 1\n") and "From Sender <sender@example.org>" in one
    assert "invoice, move_to_folder Invoices" in one

    dovecot.append(labelled(10, "invoice"))  # arrives while the daemon is down
    second = mail.start()
    wait_for(lambda: done(mail, 10), timeout=DEADLINE, what="the message that came during the restart")
    with dovecot.client() as client:  # a copy of a message already run, back in the inbox
        client.select_folder("Invoices")
        client.copy(client.search(["HEADER", "Message-ID", mid(1)]), "INBOX")
    dovecot.append(labelled(11, "newsletter"))  # after the copy: once it is filed, the copy was seen too
    wait_for(lambda: done(mail, 11) and mid(11) in dovecot.message_ids("Newsletters"), timeout=DEADLINE,
             what="the last message")  # fmt: skip
    assert second.stop() == 0

    runs = by_message_id(mail)
    assert sorted(runs) == sorted(mid(n) for n in range(1, 12)) and all(len(r) == 1 for r in runs.values())
    assert dovecot.message_ids("Invoices") == sorted([mid(1), mid(4), mid(7), mid(10)])
    assert mid(1) in dovecot.message_ids("INBOX")  # the copy is recognised by its Message-ID and left alone


def test_server_stopped_and_started_midway_every_message_is_filed_once(mail, dovecot, standin):
    standin.config.latency = 1.0  # the runs are with the model when the server goes away
    for n in range(1, 5):
        dovecot.append(labelled(n, "invoice" if n % 2 else "newsletter"))
    daemon = mail.start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="runs in the model's hands")
    dovecot.stop()  # the runs' moves meet a server that is gone; the watcher loses its connection
    wait_for(lambda: "waits: mailbox" in daemon.log and "is unreachable" in daemon.log, timeout=DEADLINE,
             what="a move to wait for the server, and the watcher to notice")  # fmt: skip
    dovecot.start()
    standin.config.latency = 0.0
    for n in (5, 6):
        dovecot.append(labelled(n, "invoice"))
    wait_for(lambda: done(mail, 6) and len(dovecot.message_ids("Invoices")) == 4, timeout=DEADLINE,
             what="all six filed after the restart")  # fmt: skip
    assert daemon.stop() == 0

    runs = by_message_id(mail)
    assert sorted(runs) == sorted(mid(n) for n in range(1, 7)) and all(len(r) == 1 for r in runs.values())
    assert {r.status for rs in runs.values() for r in rs} == {RunStatus.SUCCEEDED}
    assert {r.attempts for rs in runs.values() for r in rs} == {1}  # an outage uses up no attempt
    assert dovecot.message_ids("Invoices") == sorted(mid(n) for n in (1, 3, 5, 6))
    assert dovecot.message_ids("Newsletters") == sorted(mid(n) for n in (2, 4))
    assert dovecot.message_ids("INBOX") == []
    assert "is reachable again" in daemon.log


def test_sigkill_between_copy_and_expunge_leaves_the_message_in_one_folder(mail, dovecot):
    dovecot.restart_with_capabilities(["MOVE"])  # the COPY + \\Deleted + UID EXPUNGE fallback
    dovecot.append(labelled(1, "invoice"))
    dovecot.append(labelled(2, "personal"))
    crashing = mail.start(GRISTMILL_FAILPOINT="mail_after_copy")
    assert crashing.wait() == -signal.SIGKILL, crashing.log
    # Copied, not yet removed: in two folders for now.
    assert mid(1) in dovecot.message_ids("Invoices") and mid(1) in dovecot.message_ids("INBOX")

    again = mail.start()
    wait_for(lambda: done(mail, 2), timeout=DEADLINE, what="both runs after the restart")
    assert again.stop() == 0
    assert dovecot.message_ids("Invoices") == [mid(1)]
    assert dovecot.message_ids("INBOX") == [mid(2)]
    (run,) = by_message_id(mail)[mid(1)]
    assert run.status is RunStatus.SUCCEEDED and run.attempts == 2
    assert run.outputs["filed"]["note"].startswith("already done")


def _no_text_part() -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "scanner@example.org", "alice@example.org", "Scan"
    mail["Message-ID"] = mid(1)
    mail.add_attachment(b"%PDF-1.4 not really", maintype="application", subtype="pdf", filename="scan.pdf")
    return bytes(mail)


def _big_attachment() -> bytes:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "big@example.org", "alice@example.org", "Huge"
    mail["Message-ID"] = mid(2)
    mail.set_content("An invoice with a large attachment.")
    mail.add_attachment(b"\0" * (30 * 1024 * 1024), maintype="application", subtype="octet-stream",
                        filename="huge.bin")  # fmt: skip
    return bytes(mail)


MALFORMED = (
    b"From: <<<not an address\r\nTo: alice@example.org\r\nSubject: =?utf-8?q?broken=ZZ?= \xff\xfe raw\r\n"
    b"Message-ID: <m3.gristmill-test@example.org>\r\nThis line is no header at all\r\n"
    b"Content-Type: text/plain; charset=nonsense-charset\r\n\r\npersonal personal text of a broken message\r\n"
)


def test_bad_input_each_has_a_clear_outcome(mail, dovecot):
    for data in (_no_text_part(), _big_attachment(), MALFORMED, labelled(4, "invoice")):
        dovecot.append(data)
    daemon = mail.start(GRISTMILL_MAX_FILE_BYTES=str(10 * 1024 * 1024))
    wait_for(lambda: done(mail, 4), timeout=DEADLINE, what="an outcome for each message")
    assert daemon.stop() == 0
    runs = {mid: rs[0] for mid, rs in by_message_id(mail).items()}
    assert sorted(runs) == [mid(n) for n in (1, 2, 3, 4)]
    big = runs[mid(2)]
    assert big.status is RunStatus.SKIPPED and "over the limit of 10485760" in big.error
    assert big.input_path is None  # never downloaded
    for n in (1, 3):  # read as far as it goes: the headers, the attachment's name, the broken text
        assert runs[mid(n)].status is RunStatus.SUCCEEDED, runs[mid(n)].error
    store = read_store(mail)
    prompt = " ".join(str(m.get("content")) for call in store.calls(runs[mid(1)].id) for m in call.messages)
    store._engine.dispose()
    assert "Attachments: scan.pdf" in prompt  # the model was told what the message carries
    assert mid(4) in dovecot.message_ids("Invoices")
    assert {mid(1), mid(2), mid(3)} <= set(dovecot.message_ids("INBOX")) | set(dovecot.message_ids("Newsletters"))


def test_check_logs_in_and_names_what_is_wrong(mail, dovecot):
    result = mail.cli("check")
    assert "workflow mail-triage: mailbox alice@127.0.0.1" in result.stdout and "logged in" in result.stdout
    assert result.returncode == 0, result.stdout
    mail.extra_env["MAIL_PASSWORD"] = "not-the-password"
    wrong = mail.cli("check")
    assert wrong.returncode == 1 and "refused the login of alice" in wrong.stdout
    assert "not-the-password" not in wrong.stdout + wrong.stderr
    del mail.extra_env["MAIL_PASSWORD"]
    unset = mail.cli("check")
    assert unset.returncode == 0
    assert "warning: workflow mail-triage: the mailbox is not watched until MAIL_PASSWORD" in unset.stdout


def test_the_shipped_folder_checks_without_a_mailbox_or_tokens(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    for path in sorted((REPO / "workflows").glob("*.yaml")):
        home.use_example(path.name)
    result = home.cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: workflow mail-triage" in result.stdout and "warning: workflow form-triage" in result.stdout


def test_a_saved_message_run_by_hand_touches_no_mailbox(mail, dovecot):
    dovecot.append(labelled(1, "invoice"))
    saved = mail.root / "saved.eml"
    saved.write_bytes(labelled(2, "invoice"))
    result = mail.cli("trigger", "mail-triage", str(saved), "--json")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["outputs"]["kind"]["label"] == "invoice"
    assert run["outputs"]["filed"]["destination"] is None
    assert "started by hand" in run["outputs"]["filed"]["note"]
    assert dovecot.message_ids("INBOX") == [mid(1)] and "Invoices" not in dovecot.folders()
