"""Step kinds: each one a class with its spec, its prompt and what it does (see `base.StepKind`)."""

from daemon.steps.base import Comparison, KeyPath, StepContext, StepKind, StepResult

__all__ = ["Comparison", "KeyPath", "StepContext", "StepKind", "StepResult"]
