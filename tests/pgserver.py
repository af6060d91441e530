"""A real, throw-away PostgreSQL cluster for the tests and the benchmarks.

`initdb` into a fresh temporary folder, `pg_ctl start` on a free loopback port with the Unix socket
in that folder, one empty database per test, everything stopped and removed at the end. As root the
server must run as the `postgres` user (PostgreSQL refuses root), so the folder is handed to it.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL's server binaries were not found in /usr/lib/postgresql/*/bin; "
    "install the postgresql package (Debian/Ubuntu: apt-get install postgresql)"
)
# Durability is not what the tests measure: a crash of the test machine loses nothing of value.
_FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")
_START_TRIES = 5


class PgUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says what to install or fix."""


def find_bin() -> Path:
    """The newest installed PostgreSQL's bin folder."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise PgUnavailable(INSTALL_HINT)
    return Path(found[-1]).parent


class PgServer:
    """One cluster; `database()` makes an empty database and returns its SQLAlchemy URL."""

    def __init__(self) -> None:
        self.bin = find_bin()
        self.owner = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="gristmill-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._names = itertools.count(1)
        self.running = False

    def start(self) -> PgServer:
        """initdb and start; retries on another port when the chosen one was taken meanwhile."""
        if self.owner is not None:
            shutil.chown(self.root, self.owner.pw_name, self.owner.pw_gid)
        os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        for _ in range(_START_TRIES):
            self.port = _free_port()
            if self._start().returncode == 0:
                self.running = True
                return self
        raise PgUnavailable(f"PostgreSQL did not start; its log:\n{self.log()}")

    def _start(self) -> subprocess.CompletedProcess:
        options = " ".join(
            ["-c listen_addresses=127.0.0.1", f"-p {self.port}", f"-k {self.root}"]
            + [f"-c {setting}" for setting in _FAST]
        )
        return self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60",
            "-o", options, "start", check=False,
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop(self, url: str) -> None:
        """Drop a database made by `database()`, closing whatever is still connected to it."""
        name = url.rsplit("/", 1)[1]
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sql(self, statement: str) -> None:
        """One statement in autocommit mode on the maintenance database."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True, connect_timeout=30) as conn:  # fmt: skip
            conn.execute(statement)  # type: ignore[arg-type]

    def restart(self) -> None:
        """Stop (every connection is dropped) and start again on the same port.

        A fast shutdown, not an immediate one: with fsync and synchronous_commit off, a crash of
        the server would lose recent commits, which is not what the tests mean to show.
        """
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if self._start().returncode != 0:
            raise PgUnavailable(f"PostgreSQL did not start again; its log:\n{self.log()}")

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        try:
            if self.running:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self.bin / tool), *args]
        if self.owner is not None:
            argv = ["runuser", "-u", self.owner.pw_name, "--", *argv]
        # Output to a file, never a pipe: the server inherits it and would keep a pipe open.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.root, timeout=120, check=False)
            out.seek(0)
            text = out.read().decode(errors="replace")
        if check and done.returncode != 0:
            raise PgUnavailable(f"{tool} failed ({done.returncode}): {text.strip()[-2000:]}")
        return subprocess.CompletedProcess(argv, done.returncode, text, "")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: the `postgres` user when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise PgUnavailable(
            "running as root, PostgreSQL needs the postgres user to run as; install the postgresql package"
        ) from None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
