"""The dashboard, /metrics and /healthz. Importing this package imports no web library; `server` does."""
