"""Helpers shared by tests: the real CLI in a subprocess, a private home, waiting with deadlines."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

REPO = Path(__file__).resolve().parent.parent
OPENSSL = shutil.which("openssl")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def dead_pid() -> int:
    """The pid of a process that has just exited (a writer killed mid-write, as its leftovers name it)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def on_sync(monkeypatch: Any, name: str, note: Callable[[str], None]) -> None:
    """`note(path)` at every `os.<name>` (fsync, fdatasync) of this process, just before the sync itself."""
    real = getattr(os, name)

    def recording(fd: int) -> None:
        note(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, name, recording)


@contextmanager
def counting_commits(engine: Engine) -> Iterator[list[int]]:
    """Count, in the list yielded, the transactions committed on `engine`'s database while inside.

    Listens on every engine: a SQLite file's writes go through a second engine of its own (store/db.py).
    """

    def committed(conn: Any) -> None:
        if conn.engine.url == engine.url:
            commits.append(1)

    commits: list[int] = []
    event.listen(Engine, "commit", committed)
    try:
        yield commits
    finally:
        event.remove(Engine, "commit", committed)


@dataclass
class Home:
    """A private HOME with an inbox, a workflows folder and a data dir, and the env to use it."""

    root: Path
    ollama_url: str
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def inbox(self) -> Path:
        return self.root / "Inbox"

    @property
    def docs(self) -> Path:
        return self.root / "Documents"

    @property
    def workflows(self) -> Path:
        return self.root / "workflows"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def db_url(self) -> str:
        """The database this home's daemons use: GRISTMILL_DATABASE_URL when set, else SQLite in the data dir."""
        return self.extra_env.get("GRISTMILL_DATABASE_URL") or f"sqlite:///{self.data / 'gristmill.db'}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "OLLAMA_"))}
        env.update(
            HOME=str(self.root),
            GRISTMILL_DATA_DIR=str(self.data),
            GRISTMILL_WORKFLOWS=str(self.workflows),
            GRISTMILL_OLLAMA_URL=self.ollama_url,
            # The dashboard is off unless a test asks for it: daemons of parallel tests (and other
            # checkouts on this machine) would otherwise all try the default port.
            GRISTMILL_HTTP="off",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def use_example(self, name: str) -> Path:
        """Copy a shipped example workflow into this home's workflows folder."""
        self.workflows.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(REPO / "workflows" / name, self.workflows / name))

    def write_workflow(self, name: str, text: str) -> Path:
        self.workflows.mkdir(parents=True, exist_ok=True)
        path = self.workflows / name
        path.write_text(text)
        return path

    def drop(self, name: str, text: str, folder: Path | None = None) -> Path:
        folder = folder or self.inbox
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_text(text)
        return path

    def cli(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
        """Run `python -m daemon ARGS` with this home's environment."""
        result = subprocess.run(
            [sys.executable, "-m", "daemon", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"gristmill {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def runs(self, *args: str) -> list[dict[str, Any]]:
        """`gristmill runs --json` as Python objects, oldest first."""
        result = self.cli("runs", "--json", "--limit", "10000", *args, check=True)
        return list(reversed(json.loads(result.stdout)))


def make_home(tmp_path: Path, ollama_url: str) -> Home:
    home = Home(tmp_path / "home", ollama_url)
    for folder in (home.root, home.inbox, home.workflows):
        folder.mkdir(parents=True, exist_ok=True)
    return home


INVOICE = """INVOICE No. 2026-117
From: ACME Tools GmbH
Vendor: ACME Tools GmbH
Invoice number: 2026-117
Total: EUR 1,234.50
Currency: EUR
Due date: 2026-12-15

This invoice asks for payment of the total above by the due date. Please pay this invoice.
"""

RECEIPT = """RECEIPT
Corner Bakery, Main Street

Thank you for your payment. This receipt confirms that 2 loaves were paid in cash.
Keep this receipt for your records.
"""

LETTER = """Dear Anna,

thank you for your letter from last week. It was lovely to hear about the garden and the new
kitten. I will write a longer letter soon.

Yours, Ben
"""


def make_certificates(root: Path) -> None:
    """A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 (`cert.pem`, `key.pem`) signed by it."""

    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], cwd=root, check=True, capture_output=True, timeout=60)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=gristmill test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *curve, "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (root / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "cert.pem", "-days", "2", "-extfile", "server.ext")  # fmt: skip
    for name in ("key.pem", "ca.key"):
        (root / name).chmod(0o600)  # read by the master (root) only
