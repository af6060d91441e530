"""A real Dovecot IMAP server for the tests: a throwaway config, one passwd-file user, loopback ports.

Dovecot refuses uid 0 for a mail user and refuses to run `imap-login` as root, so the user gets an
unprivileged uid (nobody's when the tests run as root), the login and internal processes run as
`dovenull` and `dovecot`, and the whole folder is readable by them: it lives in its own temporary
folder, not under pytest's, whose parents are private to root. Dovecot runs in the foreground (`-F`)
as our child with its output in a file, so stopping it is a signal and a `wait`, and it can be
stopped and started again mid-test on the same ports with the same mail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path

from imapclient import IMAPClient

from tests.support import OPENSSL, free_port, make_certificates, wait_for

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
MISSING = "dovecot is not installed; install dovecot-imapd (apt-get install dovecot-imapd), .ci/run does it"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = gristmill-test-{imap_port}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {login_user}
default_internal_user = {internal_user}
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = 100
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""


def _mail_owner() -> tuple[int, int, str, str]:
    """The uid/gid of the mail user and the users Dovecot's own processes run as."""
    if os.geteuid() != 0:  # not root: everything runs as ourselves
        me = pwd.getpwuid(os.geteuid()).pw_name
        return os.geteuid(), os.getegid(), me, me
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid, "dovenull", "dovecot"


@dataclass
class Dovecot:
    """One private Dovecot: `user`/`password` log in over plain text on `imap_port`, TLS on `imaps_port`."""

    root: Path
    imap_port: int = 0
    imaps_port: int = 0
    user: str = "alice"
    password: str = "hunter2-Zq9xV-do-not-log"
    capability: str | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @classmethod
    def create(cls) -> Dovecot:
        """Lay out the config, certificates, user and Maildir root in a fresh temporary folder."""
        if DOVECOT is None or OPENSSL is None:
            raise AssertionError(MISSING)
        root = Path(tempfile.mkdtemp(prefix="gm-dovecot-"))
        root.chmod(0o755)  # Dovecot's auth and mail processes (not root) read the passwd file and mail
        server = cls(root)
        make_certificates(root)
        uid, gid, _, _ = _mail_owner()
        mail = root / "mail"
        mail.mkdir()
        os.chown(mail, uid, gid)
        (root / "passwd").write_text(f"{server.user}:{{PLAIN}}{server.password}:{uid}:{gid}::{mail / server.user}::\n")
        return server

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server certificate: what a client must be told to trust."""
        return self.root / "ca.pem"

    @property
    def log(self) -> str:
        text = ""
        for name in ("dovecot.log", "stdout.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def _write_config(self) -> Path:
        _, _, login_user, internal_user = _mail_owner()
        capability = f"imap_capability = {self.capability}" if self.capability is not None else ""
        conf = self.root / "dovecot.conf"
        conf.write_text(_CONFIG.format(
            root=self.root, imap_port=self.imap_port, imaps_port=self.imaps_port, login_user=login_user,
            internal_user=internal_user, capability=capability,
        ))  # fmt: skip
        return conf

    def start(self) -> Dovecot:
        """Start in the foreground as our child; return once it greets on the IMAP port."""
        assert self.process is None, "already running"
        if not self.imap_port:
            self.imap_port, self.imaps_port = free_port(), free_port()
        conf = self._write_config()
        for name in ("run", "state"):
            (self.root / name).mkdir(exist_ok=True)
        # The ports of the previous run may still be held for a moment by its dying login processes.
        wait_for(lambda: self._try_start(conf), timeout=30, what=f"dovecot to listen on {self.imap_port}")
        return self

    def _try_start(self, conf: Path) -> bool:
        if self.process is None:
            with open(self.root / "stdout.log", "ab") as out:
                self.process = subprocess.Popen(
                    [DOVECOT, "-F", "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
        if self.process.poll() is not None:
            if "Address already in use" not in self.log:
                raise AssertionError(f"dovecot exited with {self.process.returncode}:\n{self.log}")
            self.process = None
            (self.root / "stdout.log").unlink(missing_ok=True)
            return False
        return self._greets()

    def _greets(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.imap_port), timeout=2) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and its children (existing connections drop); the mail stays."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)
        # Its imap and login children share its process group; none may keep a port or a connection.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop and delete every file, mail included."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart_with_capabilities(self, drop: Iterable[str]) -> None:
        """Restart advertising the current capabilities less `drop` (the commands themselves still work)."""
        with self.client() as client:
            current = [c.decode() for c in client.capabilities()]
        dropped = {d.upper() for d in drop}
        self.capability = " ".join(c for c in current if c.upper() not in dropped)
        self.restart()

    # ---------------------------------------------------------------- looking and appending over IMAP

    @contextlib.contextmanager
    def client(self) -> Iterator[IMAPClient]:
        """A logged-in client over plain text on loopback."""
        client = IMAPClient("127.0.0.1", self.imap_port, ssl=False, timeout=30)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def append(self, data: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> int:
        """APPEND one message; its UID."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            answer = client.append(folder, data, flags=tuple(flags))
        return int(answer.split(b"]")[0].split()[-1])  # "[APPENDUID <validity> <uid>] ..."

    def folders(self) -> list[str]:
        with self.client() as client:
            return sorted(name for _, _, name in client.list_folders())

    def messages(self, folder: str = "INBOX") -> dict[int, tuple[set[str], str | None]]:
        """UID → (flags, Message-ID) of every message in `folder`."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            if not uids:
                return {}
            found = client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        out = {}
        for uid, item in found.items():
            header = BytesHeaderParser().parsebytes(item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
            message_id = header["Message-ID"].strip() if header["Message-ID"] else None
            out[uid] = ({f.decode() for f in item[b"FLAGS"]} - {"\\Recent"}, message_id)
        return out

    def message_ids(self, folder: str = "INBOX") -> list[str | None]:
        return sorted((mid for _, mid in self.messages(folder).values()), key=str)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate(self, folder: str) -> None:
        """Delete and create `folder` again: its messages go, and it gets a new UIDVALIDITY."""
        with self.client() as client:
            client.delete_folder(folder)
            client.create_folder(folder)


def message(n: int, *, subject: str | None = None, body: str | None = None, message_id: bool = True) -> bytes:
    """A small plain-text e-mail with CRLF line ends, as a server stores it."""
    lines = [
        "From: Sender <sender@example.org>",
        "To: alice@example.org",
        f"Subject: {subject or f'message {n}'}",
        "Date: Mon, 07 Dec 2026 10:00:00 +0000",
    ]
    if message_id:
        lines.append(f"Message-ID: <m{n}.gristmill-test@example.org>")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "", body or f"Body of message {n}.", ""]
    return "\r\n".join(lines).encode()
