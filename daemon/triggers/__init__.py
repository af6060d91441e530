"""Trigger kinds and the sources that queue their runs (see `base.Origin`)."""

from daemon.triggers.base import Origin, TriggerServices, TriggerSource

__all__ = ["Origin", "TriggerServices", "TriggerSource"]
