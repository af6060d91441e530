"""Workflow files: their typed models, the loader with file/line/key errors, and sandboxed templates."""

from daemon.workflow.loader import load_workflow, load_workflows
from daemon.workflow.schema import (
    Action,
    ClassifySpec,
    ClassifyStep,
    ExtractSpec,
    ExtractStep,
    FilesInput,
    Input,
    OnFailure,
    PromptSpec,
    PromptStep,
    RouteSpec,
    RouteStep,
    RunsInput,
    ScheduleTrigger,
    Step,
    StepKind,
    SummariseSpec,
    SummariseStep,
    Trigger,
    WatchTrigger,
    Workflow,
    WriteSpec,
    WriteStep,
)
from daemon.workflow.templates import check_template, render, slug

__all__ = [
    "Action", "ClassifySpec", "ClassifyStep", "ExtractSpec", "ExtractStep", "FilesInput", "Input",
    "OnFailure", "PromptSpec", "PromptStep", "RouteSpec", "RouteStep", "RunsInput", "ScheduleTrigger",
    "Step", "StepKind", "SummariseSpec", "SummariseStep", "Trigger", "WatchTrigger", "Workflow",
    "WriteSpec", "WriteStep", "check_template", "load_workflow", "load_workflows", "render", "slug",
]  # fmt: skip
