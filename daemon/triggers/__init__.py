"""Trigger kinds and the sources that queue their runs (see `base.TriggerKind`)."""

from daemon.triggers.base import Finding, Level, TriggerKind, TriggerServices, TriggerSource, WebMount

__all__ = ["Finding", "Level", "TriggerKind", "TriggerServices", "TriggerSource", "WebMount"]
