"""gristmill's benchmarks: the real daemon process against the Ollama stand-in."""
