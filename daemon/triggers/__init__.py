"""Trigger kinds and the sources that queue their runs (see `base.TriggerKind`)."""

from daemon.triggers.base import TriggerKind, TriggerServices, TriggerSource

__all__ = ["TriggerKind", "TriggerServices", "TriggerSource"]
