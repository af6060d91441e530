"""Run the stand-in: `python -m daemon.standin --port 11434 --latency 0.2 --quirk fence --api openai`.

Every switch of StandinConfig has a flag (config.py lists them): list switches repeat their flag
(`--weak tiny --weak small`), per-model ones take MODEL=VALUE (`--latency-by-model tiny=0.05`).
Without --model the stand-in has llama3.2, unless another flag names models (--vision, --weak...).
It prints "listening on <url>" once it serves, and stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from daemon.standin.config import APIS, IMPOSTORS, QUIRKS, SWITCHES, StandinConfig
from daemon.standin.server import StandinServer

_CHOICES = {"quirks": sorted(QUIRKS), "api": list(APIS), "impostor": list(IMPOSTORS)}
_MODEL_LISTS = ("vision", "thinking", "tools", "weak", "unloadable")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: where to listen, and one flag per switch."""
    parser = argparse.ArgumentParser(
        prog="python -m daemon.standin",
        description="A stand-in model server (Ollama's API, OpenAI's, or both) with a deterministic model.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    defaults = StandinConfig()
    for name, switch in SWITCHES.items():
        parser.add_argument(
            switch.flag,
            dest=name,
            action="append" if switch.repeat else "store",
            default=None,
            metavar=switch.metavar,
            choices=_CHOICES.get(name),
            help=f"{switch.help}{' (repeat)' if switch.repeat else ''}; default {getattr(defaults, name)!r}",
        )
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> StandinConfig:
    """A StandinConfig from parsed arguments; ValueError for a value a switch does not take."""
    changes = {name: getattr(args, name) for name in SWITCHES if getattr(args, name) is not None}
    if "models" not in changes and any(name in changes for name in _MODEL_LISTS):
        changes["models"] = []
    config = StandinConfig()
    config.update(changes)
    return config


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM."""
    args = parse_args(argv)
    try:
        server = StandinServer(config_from(args), host=args.host, port=args.port).start()
    except (ValueError, OSError) as exc:
        print(f"cannot start the stand-in: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    print(f"listening on {server.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
