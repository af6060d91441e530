"""gristmill: watched folders and schedules driving a local model, every call recorded."""

__version__ = "0.1.0"
