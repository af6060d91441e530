"""What the commands print: plain columns when piped, YAML for outputs, counted nouns, one-line logs."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from rich.console import Console

from daemon.logs import text_formatter
from daemon.schedule.cron import CronError, wall_triggers
from daemon.views import as_yaml, print_table
from daemon.words import count, one_line
from tests.support import LETTER, make_home

ODD_NAME = "Letter to the board of directors about the quarterly figures\nsecond line.txt"


@pytest.fixture
def done(tmp_path, standin):
    """A home where sort-inbox filed one letter whose long name holds a newline."""
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    home.drop(ODD_NAME, LETTER)
    result = home.cli("run", "--once", check=True)
    return home, result


def test_runs_piped_are_one_line_per_run_with_tab_separated_cells(done):
    home, _ = done
    lines = home.cli("runs", check=True).stdout.splitlines()
    assert lines[0] == "id\tworkflow\tstatus\tinput\tcreated\ttries\tnote"
    assert len(lines) == 2  # the header and the one run: nothing wrapped, nothing split
    cells = lines[1].split("\t")
    assert len(cells) == 7 and cells[1:3] == ["sort-inbox", "succeeded"]
    assert cells[3] == ODD_NAME.replace("\n", "\\n")
    assert cells[6].startswith("→ ") and cells[6].endswith("second line.txt")
    assert all(line == line.rstrip() for line in lines)  # no padding


def test_workflows_piped_are_plain_columns(tmp_path):
    home = make_home(tmp_path, "http://127.0.0.1:9")
    deep = "~/" + "/".join(["a-rather-long-folder-name"] * 5)
    home.write_workflow("deep.yaml", f"name: deep\ntrigger: {{watch: {{path: {deep}}}}}\nsteps:\n  - summarise: {{}}\n")
    home.use_example("daily-digest.yaml")
    home.use_example("sort-inbox.yaml")
    lines = home.cli("workflows", check=True).stdout.splitlines()
    assert lines[0] == "name\ttrigger\tnext" and len(lines) == 4
    assert lines[1].startswith("daily-digest\tcron 0 7 * * * (local time)\t20")
    assert lines[2].split("\t")[0] == "deep" and lines[2].endswith("\t—") and "a-rather-long-folder-name" in lines[2]


def test_show_prints_outputs_as_yaml_not_python(done):
    home, _ = done
    run_id = str(home.runs()[0]["id"])
    out = home.cli("show", run_id, check=True).stdout
    assert "{'" not in out and "': " not in out  # no Python dict reprs
    assert "\nstep kind\n  label: letter\n  confidence: 0.9\n" in out
    assert "\nstep filed\n  action: move_to\n" in out
    assert "\\n" in out.splitlines()[1]  # the input line: the name's newline escaped, one line


def test_the_log_line_of_a_run_with_a_newline_in_its_name_is_one_line(done):
    _, result = done
    finished = [line for line in result.stderr.splitlines() if " succeeded in " in line]
    assert len(finished) == 1 and "quarterly figures\\nsecond line.txt" in finished[0]
    assert all(line[:4].isdigit() for line in result.stderr.splitlines()), result.stderr


def test_the_text_log_escapes_controls_in_the_message_but_keeps_tracebacks_whole():
    formatter = text_formatter()
    record = logging.LogRecord("gristmill", logging.INFO, __file__, 1, "queued %s", ("a\nb\x1b[31m.pdf",), None)
    assert formatter.format(record).endswith("INFO queued a\\nb\\x1b[31m.pdf")
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("gristmill", logging.ERROR, __file__, 1, "x\ny", (), sys.exc_info())
    text = formatter.format(failed)
    assert text.splitlines()[0].endswith("ERROR x\\ny") and "Traceback" in text.splitlines()[1]


def test_on_a_terminal_tables_are_rich():
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, color_system=None, width=100)
    print_table(terminal, ("id", "name"), [["1", "[red]x\ny"]])
    lines = screen.getvalue().splitlines()
    assert "\t" not in screen.getvalue() and lines[0].split() == ["id", "name"]
    assert "[red]x\\ny" in lines[1]  # a name is neither markup nor a line break


def test_yaml_keeps_unicode_and_long_text_on_one_line():
    text = "Summary - " + "a rather long invoice " * 20
    assert as_yaml({"text": text.strip(), "n": 2}, indent="  ") == f"  text: {text.strip()}\n  n: 2\n"
    assert as_yaml({"vendor": "株式会社トヨタ"}) == "vendor: 株式会社トヨタ\n"


def test_counted_nouns():
    assert [count(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert count(1, "model call") == "1 model call" and count(2, "query", "queries") == "2 queries"
    assert one_line("plain name.pdf") == "plain name.pdf"
    with pytest.raises(CronError, match="it has 1 field, not 5"):
        wall_triggers("5")


def test_a_one_field_cron_in_a_workflow_says_1_field(tmp_path):
    from daemon.workflow import load_workflows

    (tmp_path / "t.yaml").write_text("name: t\ntrigger: {schedule: {cron: '5'}}\nsteps: [summarise: ]\n")
    _, errors = load_workflows(tmp_path)
    assert "'5' has 1 field; a cron expression has 5" in str(errors[0])
