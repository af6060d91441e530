"""Bodies that arrive from outside (HTTP hooks, fetched mail): checked, then stored durably before a run is queued."""

from daemon.inbound.hook import (
    BodyKind,
    HookBody,
    HookLimits,
    HookRefusal,
    authorize,
    parse_body,
    parse_hook,
    precheck,
)
from daemon.inbound.spool import InboundSpool, Spooled

__all__ = [
    "BodyKind", "HookBody", "HookLimits", "HookRefusal", "InboundSpool", "Spooled", "authorize", "parse_body",
    "parse_hook", "precheck",
]  # fmt: skip
