"""Every default of a setting, named once; `settings.py` and the classes that take them use these."""

MODEL = "llama3.2"
"""The model a workflow uses when it names none."""

OLLAMA_URL = "http://127.0.0.1:11434"
"""Where Ollama listens unless OLLAMA_HOST or GRISTMILL_OLLAMA_URL say otherwise."""

CONCURRENCY = 2
"""Model calls in flight at once."""

MAX_ATTEMPTS = 3
"""Tries of a run that fails for reasons other than an outage."""

MODEL_TIMEOUT = 300.0
"""Seconds one model call may take."""

CONNECT_TIMEOUT = 5.0
"""Seconds to connect to the model server."""

BACKOFF_MAX_SECONDS = 60.0
"""Longest wait between tries while the model server is away."""

STOP_TIMEOUT = 30.0
"""Seconds running runs get to finish on SIGTERM."""

RESCAN_SECONDS = 300.0
"""How often watched folders are listed again for files whose events were lost."""

DATABASE_TIMEOUT = 30.0
"""Seconds a database write waits for another process's lock (SQLite) before the database counts as away."""

LEASE_SECONDS = 30.0
"""A running run whose worker has not renewed its lease this long returns to the queue."""

HEARTBEAT_SECONDS = 10.0
"""How often a worker renews the leases of its running runs."""

PROGRESS_SECONDS = 60.0
"""How often the daemon logs its progress through a backlog (0: never)."""

MAX_FILE_BYTES = 50 * 1024 * 1024
"""Larger files are skipped unread (50 MiB)."""

MAX_CHARS = 200_000
"""Extracted characters kept per document."""

SCHEDULE_GRACE_SECONDS = 60.0
"""A tick recorded later than this counts as missed (the catch-up policy applies)."""

SCAN_PAGES = 20
"""Pages of a PDF without a text layer that a vision model reads (0: none; such a PDF is skipped)."""

EXTRACT_SECONDS = 30.0
"""Time limit for reading one PDF, DOCX, HTML page or e-mail."""

EXTRACT_MEMORY_MB = 1024
"""Memory limit (address space) of the process that reads one."""

CONTEXT_TOKENS = 8192
"""num_ctx sent with every Ollama call of a model when the workflow's options set none (capped by its context)."""

SERVER_SLOTS = 1
"""Calls in flight at once on a named server (Ollama's OLLAMA_NUM_PARALLEL is often 1)."""

KEEP_ALIVE = "30m"
"""How long Ollama keeps a model loaded after a call, so sparse runs do not reload it."""

MODEL_LIST_SECONDS = 60.0
"""How often the router asks each server again which models it has."""

COST_COMPARE = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4")
"""The paid APIs `gristmill costs` prices the same tokens at (names in the price table)."""

HOOK_WAIT_MAX_SECONDS = 300.0
"""The longest `?wait=SECONDS` a hook request may ask for; longer waits are cut to this."""
