"""Run the stand-in: `python -m daemon.standin --port 11434 --latency 0.2 --quirk fence`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from daemon.standin.config import QUIRKS, StandinConfig
from daemon.standin.server import StandinServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m daemon.standin",
        description="An Ollama-compatible stand-in server with a deterministic model.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--slots", type=int, default=1, help="answers computed in parallel")
    parser.add_argument("--max-queue", type=int, default=512, help="requests allowed to wait")
    parser.add_argument("--context-length", type=int, default=8192)
    parser.add_argument("--model", action="append", default=[], help="a known model (repeat)")
    parser.add_argument("--vision", action="append", default=[], help="a model that sees images")
    parser.add_argument("--thinking", action="append", default=[], help="a model that thinks")
    parser.add_argument("--quirk", action="append", default=[], choices=sorted(QUIRKS))
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> StandinConfig:
    """A StandinConfig from parsed arguments; vision and thinking models are known models too."""
    models = args.model or ([] if args.vision or args.thinking else ["llama3.2"])
    config = StandinConfig(
        models=list(models),
        vision=list(args.vision),
        thinking=list(args.thinking),
        context_length=args.context_length,
        latency=args.latency,
        slots=args.slots,
        max_queue=args.max_queue,
        quirks=set(args.quirk),
    )
    for model in args.vision + args.thinking:
        config.add_model(model)
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
