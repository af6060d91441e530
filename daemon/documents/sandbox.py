"""Running a parser of untrusted bytes in a child process with a time and a memory limit.

A decompression bomb or a parser loop then ends only that child. A small single-threaded
"zygote" process, started once with the parsers imported, forks one child per document: each
document costs a fork, not an interpreter start, and the daemon's own threads are never forked.
The daemon hands the zygote one end of a fresh socket pair per document (SCM_RIGHTS); the child
reads the bytes from it and answers in JSON (never pickle: the child has parsed hostile input).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

_HEADER = struct.Struct(">II")  # length of the JSON header, length of the data


class Outcome:
    """How a sandboxed parse ended."""

    OK, ERROR, MEMORY, TIMEOUT, CRASH = "ok", "error", "memory", "timeout", "crash"


class Sandbox:
    """The daemon's side: one zygote, started on first use, restarted if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._zygote: subprocess.Popen[bytes] | None = None

    def run(self, parser: str, data: bytes, args: list[Any], *, seconds: float, memory_mb: int) -> tuple[str, Any]:
        """(Outcome, value): the parser's [text, meta], or a reason in words."""
        mine, theirs = socket.socketpair()
        with mine:
            try:
                self._hand_over(theirs)
            finally:
                theirs.close()
            header = json.dumps({"parser": parser, "args": args, "seconds": seconds, "memory_mb": memory_mb}).encode()
            deadline = time.monotonic() + seconds
            try:
                mine.sendall(_HEADER.pack(len(header), len(data)) + header)
                mine.sendall(data)
                pid = struct.unpack(">I", _read(mine, 4, deadline))[0]
            except (OSError, TimeoutError) as exc:
                return Outcome.CRASH, f"the parser process could not start ({exc})"
            try:
                size = struct.unpack(">I", _read(mine, 4, deadline))[0]
                return tuple(json.loads(_read(mine, size, deadline)))  # type: ignore[return-value]
            except TimeoutError:
                _kill(pid)  # alive and unreaped, so the pid is still its own
                return Outcome.TIMEOUT, f"took longer than {seconds:g} s"
            except (OSError, ValueError, struct.error):
                return Outcome.CRASH, "the parser process died (out of memory or CPU time?)"

    def _hand_over(self, end: socket.socket) -> None:
        with self._lock:
            for _ in range(2):  # once more with a fresh zygote if the old one is gone
                control = self._ensure()
                try:
                    socket.send_fds(control, [b"j"], [end.fileno()])
                    return
                except OSError:
                    self._reset()
            raise OSError("the extraction process cannot be started")

    def _ensure(self) -> socket.socket:
        if self._control is None or self._zygote is None or self._zygote.poll() is not None:
            self._reset()
            # SEQPACKET, not DGRAM: the zygote must see end-of-file (and exit) when the daemon dies.
            ours, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            code = f"from daemon.documents.sandbox import zygote; zygote({child.fileno()})"
            self._zygote = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[child.fileno()],
                stdin=subprocess.DEVNULL,
            )
            child.close()
            self._control = ours
        return self._control

    def _reset(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote exits when its control socket closes
        if self._zygote is not None and self._zygote.poll() is None:
            self._zygote.kill()
            self._zygote.wait(5)
        self._control = self._zygote = None


def _read(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks, left = [], size
    while left:
        sock.settimeout(max(0.0, deadline - time.monotonic()) or 0.001)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except TimeoutError as exc:
            raise TimeoutError from exc
        if not chunk:
            raise OSError("closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- the zygote and its children (separate processes) ---------------------------------------


def zygote(control_fd: int) -> None:
    """Fork one child per received socket until the daemon closes the control socket."""
    from daemon.documents import parsers  # noqa: F401  (imported before forking, once)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(control, 16, 1)
        except InterruptedError:
            continue
        if not msg:
            os._exit(0)
        for fd in fds:
            if os.fork() == 0:
                control.close()
                _child(socket.socket(fileno=fd))
            os.close(fd)


def _child(sock: socket.socket) -> None:
    code = 0
    try:
        sock.sendall(struct.pack(">I", os.getpid()))
        sizes = _read(sock, _HEADER.size, time.monotonic() + 60)
        header_len, data_len = _HEADER.unpack(sizes)
        job = json.loads(_read(sock, header_len, time.monotonic() + 60))
        data = _read(sock, data_len, time.monotonic() + 600)
        result = _parse(job, data)
        body = json.dumps(result, default=str).encode()
        sock.sendall(struct.pack(">I", len(body)) + body)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _parse(job: dict[str, Any], data: bytes) -> list[Any]:
    import resource

    from daemon.documents import parsers

    limit = int(job["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cpu = int(job["seconds"]) + 1  # a backstop should the daemon fail to kill us in time
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        return [Outcome.OK, list(parsers.PARSERS[job["parser"]](data, *job["args"]))]
    except MemoryError:
        return [Outcome.MEMORY, f"needed more than {job['memory_mb']} MB of memory"]
    except RecursionError:
        return [Outcome.ERROR, "it is nested too deeply"]
    except Exception as exc:  # any parser failure is a property of the file, reported in words
        text = " ".join(str(exc).split())[:200]
        return [Outcome.ERROR, f"{type(exc).__name__}: {text}" if text else type(exc).__name__]


SANDBOX = Sandbox()
