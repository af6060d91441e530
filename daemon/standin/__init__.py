"""A stand-in model server (Ollama's API, OpenAI's, or both) with a deterministic "model", for tests and benchmarks."""

from daemon.standin.config import StandinConfig
from daemon.standin.server import StandinServer

__all__ = ["StandinConfig", "StandinServer"]
