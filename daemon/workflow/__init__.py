"""Workflow files: their typed models, the loader with file/line/key errors, and sandboxed templates."""

from daemon.workflow.loader import load_workflow, load_workflows
from daemon.workflow.schema import FilesInput, Input, OnFailure, RunsInput, Workflow
from daemon.workflow.steps import Step
from daemon.workflow.templates import check_template, render, slug
from daemon.workflow.triggers import ScheduleTrigger, Trigger, WatchTrigger

__all__ = [
    "FilesInput",
    "Input",
    "OnFailure",
    "RunsInput",
    "ScheduleTrigger",
    "Step",
    "Trigger",
    "WatchTrigger",
    "Workflow",
    "check_template",
    "load_workflow",
    "load_workflows",
    "render",
    "slug",
]  # fmt: skip  (a list of names reads best packed)
