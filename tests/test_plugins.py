"""Plugins: a real package, installed with pip, adds a step kind and a route action through entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.plugins import PluginError, Registry, build_registry
from tests.support import INVOICE, LETTER, REPO, make_home

WORKFLOW = """
name: shouty
trigger: {watch: {path: ~/Inbox, settle_seconds: 0}}
steps:
  - id: loud
    shout: {text: "{{ file.stem }}"}
  - id: kind
    classify: {labels: {invoice: A bill that asks for payment, letter: Personal correspondence}}
  - route:
      by: kind
      routes:
        invoice: {stamp: checked}
      default: keep
"""


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin installed by pip into its own folder (a site directory for PYTHONPATH)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(REPO / "tests" / "plugin_example"),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip  (one command line)
    assert list(target.glob("gristmill_example_plugin-*.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def home(tmp_path, standin, plugin_site):
    home = make_home(tmp_path, standin.url)
    home.extra_env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), str(REPO)])
    home.write_workflow("shouty.yaml", WORKFLOW)
    return home


def test_a_plugin_step_kind_and_route_action_run_end_to_end(home):
    home.drop("invoice-7.txt", INVOICE)
    home.drop("letter-2.txt", LETTER)

    home.cli("run", "--once", check=True)

    runs = {Path(r["input"]).name: r for r in home.runs()}
    invoice, letter = runs["invoice-7.txt"], runs["letter-2.txt"]
    assert invoice["status"] == letter["status"] == "succeeded"
    assert invoice["outputs"]["loud"] == {"text": "INVOICE-7"}
    assert invoice["outputs"]["route"]["action"] == "stamp"
    stamp = home.inbox / "invoice-7.txt.stamp"
    assert invoice["outputs"]["route"]["destination"] == str(stamp)
    assert stamp.read_text() == "checked\n"
    assert letter["outputs"]["route"]["action"] == "keep"
    assert not (home.inbox / "letter-2.txt.stamp").exists()


def test_check_lists_the_plugin_and_without_it_the_kind_is_unknown(home):
    checked = home.cli("check")
    assert "plugins: example" in checked.stdout

    home.extra_env["PYTHONPATH"] = str(REPO)  # the same workflow, the plugin not installed
    result = home.cli("check")
    assert result.returncode == 2
    assert "'shout' is not a step kind" in result.stdout and "shouty.yaml, line 6" in result.stdout


def test_a_name_registered_twice_or_a_failing_plugin_is_one_clear_error():
    class Point:
        def __init__(self, name, load):
            self.name, self.load = name, load

    def clash(registry: Registry) -> None:
        from daemon.steps.summarise import Summarise

        registry.add_step(Summarise())

    with pytest.raises(PluginError, match="step kind 'summarise' is registered twice"):
        build_registry([Point("clash", lambda: clash)])
    with pytest.raises(PluginError, match="the plugin 'broken' failed to load .ZeroDivisionError"):
        build_registry([Point("broken", lambda: lambda registry: 1 / 0)])
