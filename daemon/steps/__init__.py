"""Step kinds: each one a class with its spec, its prompt and what it does (see `base.StepKind`)."""

from daemon.steps.base import KeyPath, StepContext, StepKind, StepResult

__all__ = ["KeyPath", "StepContext", "StepKind", "StepResult"]
