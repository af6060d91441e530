"""Workflow files: the SPEC example, schedules, every kind of error with its line and key, folders."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from daemon.actions import make_action
from daemon.durations import parse_duration
from daemon.errors import WorkflowError
from daemon.steps.extract import ExtractSpec
from daemon.workflow import Workflow, load_workflow, load_workflows

SPEC_EXAMPLE = """\
name: sort-inbox                 # unique, [a-z0-9-]+
description: File incoming documents by type, with a summary beside each.
model: llama3.2                  # optional, overrides GRISTMILL_MODEL
trigger:
  watch:
    path: ~/Inbox
    patterns: ["*.pdf", "*.txt", "*.md", "*.docx", "*.html", "*.eml"]   # default: all files
    recursive: false
    settle_seconds: 2            # unchanged size+mtime this long = fully written
steps:
  - id: summary
    summarise: {max_words: 80}
  - id: kind
    classify:
      labels:                    # label: description (the description goes into the prompt)
        invoice: A bill that asks for payment
        receipt: Proof of a payment already made
        letter: Personal or business correspondence
      min_confidence: 0.5        # below it the answer counts as "no label"
  - id: filed
    route:
      by: kind
      routes:
        invoice: {move_to: ~/Documents/Invoices}
        receipt: {move_to: ~/Documents/Receipts}
      default: {move_to: ~/Documents/Unsorted}      # no label, unknown label, low confidence
  - write:
      path: ~/Documents/Summaries/{{ file.stem }}.md
      content: |
        # {{ file.name }} ({{ kind.label }})
        {{ summary.text }}
"""

WATCH_HEAD = """\
name: t
trigger:
  watch:
    path: ~/In
steps:
"""  # steps start on line 6

CLASSIFY_KIND = """\
  - id: kind
    classify:
      labels: [invoice, receipt]
"""  # lines 6-8 after WATCH_HEAD


def write(folder: Path, text: str, name: str = "flow.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(folder: Path, text: str) -> WorkflowError:
    path = write(folder, text)
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert caught.value.path == path
    return caught.value


# ---------------------------------------------------------------- files that load


def test_spec_example_loads_with_its_values(tmp_path: Path) -> None:
    path = write(tmp_path, SPEC_EXAMPLE, "sort.yaml")
    wf = load_workflow(path)
    assert wf.name == "sort-inbox" and wf.model == "llama3.2" and wf.source == path
    assert wf.description.startswith("File incoming documents")
    assert wf.takes_file and wf.trigger.kind.name == "watch" and wf.input is None
    watch = wf.trigger.spec
    assert watch.path == Path.home() / "Inbox"
    assert watch.patterns == ["*.pdf", "*.txt", "*.md", "*.docx", "*.html", "*.eml"]
    assert (watch.recursive, watch.settle_seconds, watch.poll, watch.depth) == (False, 2.0, False, None)
    assert wf.step_ids == ["summary", "kind", "filed", "write"]
    assert [s.kind.name for s in wf.steps] == ["summarise", "classify", "route", "write"]
    assert wf.step("summary").spec.max_words == 80
    kind = wf.step("kind")
    assert kind.kind.name == "classify"
    assert kind.spec.labels["receipt"] == "Proof of a payment already made"
    assert list(kind.spec.labels) == ["invoice", "receipt", "letter"] and kind.spec.min_confidence == 0.5
    route = wf.step("filed").spec
    assert route.by == "kind" and route.review is None
    assert {k: (a.name, a.target) for k, a in route.routes.items()} == {
        "invoice": ("move_to", "~/Documents/Invoices"),
        "receipt": ("move_to", "~/Documents/Receipts"),
    }
    assert route.default.target == "~/Documents/Unsorted"
    written = wf.step("write")
    assert written.id is None and written.step_id == "write"
    assert written.spec.path == "~/Documents/Summaries/{{ file.stem }}.md"
    assert written.spec.content == "# {{ file.name }} ({{ kind.label }})\n{{ summary.text }}\n"
    assert (wf.record, wf.retention, wf.on_failure, wf.options) == ("full", None, None, {})
    assert "source" not in wf.model_dump()


def test_schedule_workflow_with_files_input(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            """\
        name: notes-digest
        trigger: {schedule: {cron: "0 7 * * *", timezone: Europe/Berlin, catch_up: false}}
        input: {files: {path: ~/Notes, patterns: ["*.md"], since: 7d}}
        options: {num_ctx: 8192, temperature: 0.2, stop: "###"}
        retention: 90d
        record: metadata
        steps:
          - summarise:
              instructions: "Notes of {{ run.started_at }}"
        """,
        )
    )
    schedule = wf.trigger.spec
    assert not wf.takes_file and schedule.cron == "0 7 * * *" and schedule.timezone == "Europe/Berlin"
    assert schedule.interval is None and schedule.catch_up is False and schedule.overlap == "skip"
    files = wf.input.files
    assert files.path == Path.home() / "Notes" and files.patterns == ["*.md"]
    assert files.since == "7d" and files.since_delta == timedelta(days=7)
    assert wf.retention_delta == timedelta(days=90) and wf.record == "metadata"
    assert wf.options == {"num_ctx": 8192, "temperature": 0.2, "stop": "###"}


def test_schedule_every_with_runs_input(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            """\
        name: digest
        trigger:
          schedule: {every: 30m, overlap: queue}
        input:
          runs: {workflow: sort-inbox}
        steps:
          - prompt: "List what was filed: {{ items | length }} items"
        """,
        )
    )
    assert wf.trigger.spec.interval == timedelta(minutes=30)
    assert wf.trigger.spec.overlap == "queue"
    assert wf.input.runs.workflow == "sort-inbox" and wf.input.runs.since_delta is None
    assert wf.steps[0].spec.instruction.startswith("List what was filed")
    assert wf.steps[0].spec.schema_ is None


def test_six_field_cron_and_day_names(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            """\
        name: t
        trigger: {schedule: {cron: "30  0 7 * * MON-FRI"}}
        steps: [{summarise: }]
        """,
        )
    )
    assert wf.trigger.spec.cron == "30 0 7 * * MON-FRI"


def test_action_shorthand_keep_and_default(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            WATCH_HEAD
            + CLASSIFY_KIND
            + """\
  - route:
      by: kind
      routes:
        invoice: keep
        receipt: {copy_to: "~/Receipts/{{ file.name }}"}
  - id: hook
    route:
      by: kind
      default: {webhook: "https://example.org/hook"}
      review: keep
""",
        )
    )
    routes = wf.steps[1].spec.routes
    assert routes["invoice"] == make_action("keep", True) and routes["invoice"].name == "keep"
    assert routes["invoice"].target is None
    assert (routes["receipt"].name, routes["receipt"].target) == ("copy_to", "~/Receipts/{{ file.name }}")
    assert wf.steps[1].spec.default.name == "keep"
    assert wf.steps[2].spec.default.target == "https://example.org/hook"
    assert wf.steps[2].spec.review.name == "keep"


def test_route_without_by_always_takes_default(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            WATCH_HEAD
            + """\
  - route:
      default: {move_to: "~/Filed/{{ file.name | slug }}"}
""",
        )
    )
    assert wf.steps[0].spec.by is None and wf.steps[0].spec.default.name == "move_to"


def test_labels_as_list_yaml_words_and_merge_keys(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            WATCH_HEAD
            + """\
  - id: answer
    classify:
      labels: [yes, no, " maybe "]
  - route:
      by: answer
      routes:
        yes: &filed {move_to: ~/Yes}
        no:
          <<: *filed
          move_to: ~/No
""",
        )
    )
    assert wf.steps[0].spec.labels == {"yes": "", "no": "", "maybe": ""}
    routes = wf.steps[1].spec.routes
    assert (routes["yes"].target, routes["no"].target) == ("~/Yes", "~/No")


def test_extract_json_schema(tmp_path: Path) -> None:
    wf = load_workflow(
        write(
            tmp_path,
            WATCH_HEAD
            + """\
  - extract:
      fields:
        vendor: string
        total: Number
        count: integer
        paid: boolean
        due: date
        tags: list
        iban: the payee's IBAN, without spaces
""",
        )
    )
    spec = wf.steps[0].spec
    assert isinstance(spec, ExtractSpec)
    assert spec.json_schema() == {
        "type": "object",
        "properties": {
            "vendor": {"type": ["string", "null"]},
            "total": {"type": ["number", "null"]},
            "count": {"type": ["integer", "null"]},
            "paid": {"type": ["boolean", "null"]},
            "due": {"type": ["string", "null"], "format": "date"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "iban": {"type": ["string", "null"], "description": "the payee's IBAN, without spaces"},
        },
        "required": ["vendor", "total", "count", "paid", "due", "tags", "iban"],
        "additionalProperties": False,
    }


def test_models_work_without_a_file() -> None:
    wf = Workflow.model_validate({
        "name": "x",
        "trigger": {"watch": {"path": "/in"}},
        "steps": [{"summarise": None}, {"id": "k", "classify": {"labels": ["a"]}},
                  {"route": {"by": "k", "routes": {"a": "keep"}}}],
    })  # fmt: skip
    assert wf.step_ids == ["summarise", "k", "route"]
    assert wf.step("route").kind.name == "route"
    with pytest.raises(KeyError):
        wf.step("nope")
    with pytest.raises(ValidationError):
        wf.name = "y"  # frozen


# ---------------------------------------------------------------- errors with their line and key

ROUTE_TAIL = """\
  - route:
      by: kind
      routes:
        invoice: {move_to: ~/I}
"""  # lines 9-12 after WATCH_HEAD + CLASSIFY_KIND

ERRORS = {
    "unknown top key": (
        "name: t\nfoo: 1\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        2,
        "foo",
        "unknown key 'foo'; allowed keys are name, description",
    ),
    "unknown nested key": (
        WATCH_HEAD + "  - summarise: {max_word: 3}\n",
        6,
        "steps[0].summarise.max_word",
        "allowed keys are max_words, instructions",
    ),
    "source is not a key": (
        "name: t\nsource: x\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        2,
        "source",
        "unknown key 'source'",
    ),
    "wrong type": (
        WATCH_HEAD + "  - summarise:\n      max_words: lots\n",
        7,
        "steps[0].summarise.max_words",
        "expected a whole number, got 'lots'",
    ),
    "not a bool": (
        "name: t\ntrigger:\n  watch:\n    path: x\n    recursive: maybe\nsteps: [summarise: ]\n",
        5,
        "trigger.watch.recursive",
        "expected true or false",
    ),
    "missing key": (
        "name: t\ntrigger:\n  watch:\n    recursive: true\nsteps: [summarise: ]\n",
        3,
        "trigger.watch.path",
        "required key is missing",
    ),
    "no steps": ("name: t\ntrigger: {watch: {path: x}}\nsteps: []\n", 3, "steps", "empty"),
    "bad name": (
        "name: Sort Inbox\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        1,
        "name",
        "'Sort Inbox' is not a workflow name",
    ),
    "step without kind": (WATCH_HEAD + "  - summarise:\n  - id: later\n", 7, "steps[1]", "step 'later' has no kind"),
    "step with two kinds": (
        WATCH_HEAD + "  - id: x\n    summarise:\n    classify: {labels: [a]}\n",
        6,
        "steps[0]",
        "step 'x' has several kinds (summarise, classify)",
    ),
    "bad step id": (WATCH_HEAD + "  - id: My-Step\n    summarise:\n", 6, "steps[0].id", "'My-Step'"),
    "duplicate step id": (
        WATCH_HEAD + "  - summarise:\n  - summarise: {max_words: 9}\n",
        7,
        "steps[1]",
        "'summarise' is already used by steps[0]",
    ),
    "reserved step id": (WATCH_HEAD + "  - id: file\n    summarise:\n", 6, "steps[0].id", "'file'"),
    "route by unknown step": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL.replace("by: kind", "by: sort"),
        10,
        "steps[1].route.by",
        "step 'sort' does not exist",
    ),
    "route by later step": (WATCH_HEAD + ROUTE_TAIL + CLASSIFY_KIND, 7, "steps[0].route.by", "comes after"),
    "route by extract": (
        WATCH_HEAD + "  - id: kind\n    extract: {fields: [a]}\n" + ROUTE_TAIL,
        9,
        "steps[1].route.by",
        "step 'kind' is of kind extract",
    ),
    "routes without by": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL.replace("      by: kind\n", ""),
        9,
        "steps[1].route.by",
        "routes and review need by",
    ),
    "route label unknown": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL.replace("invoice:", "Invoice:"),
        12,
        "steps[1].route.routes.Invoice",
        "did you mean 'invoice'?",
    ),
    "labels differ in case": (
        WATCH_HEAD + "  - classify:\n      labels:\n        a: x\n        A: y\n",
        9,
        "steps[0].classify.labels.A",
        "differ only in case",
    ),
    "extract field name": (
        WATCH_HEAD + "  - extract:\n      fields:\n        Total: number\n",
        8,
        "steps[0].extract.fields.Total",
        "'Total' is not a field name",
    ),
    "template syntax": (
        WATCH_HEAD + "  - write:\n      path: x\n      content: |\n        hi\n        {{ a }\n",
        8,
        "steps[0].write.content",
        "does not compile: unexpected '}' (template line 2)",
    ),
    "template in action": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL.replace("~/I", "'~/{{ x'"),
        12,
        "steps[1].route.routes.invoice.move_to",
        "does not compile",
    ),
    "unknown option": (
        "name: t\noptions:\n  temperature: 0.2\n  colour: red\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        4,
        "options.colour",
        "'colour' is not a model option",
    ),
    "option type": (
        "name: t\noptions:\n  num_ctx: big\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        3,
        "options.num_ctx",
        "must be a whole number",
    ),
    "input with watch": (
        WATCH_HEAD + "  - summarise:\ninput: {files: {path: x}}\n",
        7,
        "input",
        "input only applies to a schedule trigger",
    ),
    "on_failure with schedule": (
        "name: t\ntrigger: {schedule: {every: 5m}}\nsteps: [summarise: ]\non_failure: {move_to: ~/x}\n",
        4,
        "on_failure",
        "only applies to a watch",
    ),
    "cron fields": (
        "name: t\ntrigger:\n  schedule:\n    cron: '0 7 * *'\nsteps: [summarise: ]\n",
        4,
        "trigger.schedule.cron",
        "has 4 fields",
    ),
    "cron characters": (
        "name: t\ntrigger:\n  schedule:\n    cron: '0 7 * * $'\nsteps: [summarise: ]\n",
        4,
        "trigger.schedule.cron",
        "'$'",
    ),
    "time zone": (
        "name: t\ntrigger:\n  schedule:\n    every: 1h\n    timezone: Mars/Base\nsteps: [summarise: ]\n",
        5,
        "trigger.schedule.timezone",
        "unknown time zone 'Mars/Base'",
    ),
    "every": (
        "name: t\ntrigger:\n  schedule:\n    every: 5 fortnights\nsteps: [summarise: ]\n",
        4,
        "trigger.schedule.every",
        "unknown unit 'fortnights'",
    ),
    "cron and every": (
        "name: t\ntrigger:\n  schedule:\n    every: 5m\n    cron: '* * * * *'\nsteps: [summarise: ]\n",
        3,
        "trigger.schedule",
        "exactly one of cron or every",
    ),
    "watch and schedule": (
        "name: t\ntrigger:\n  watch: {path: x}\n  schedule: {every: 5m}\nsteps: [summarise: ]\n",
        2,
        "trigger",
        "exactly one of watch, schedule, mailbox or http",
    ),
    "depth without recursive": (
        "name: t\ntrigger:\n  watch:\n    path: x\n    depth: 2\nsteps: [summarise: ]\n",
        5,
        "trigger.watch.depth",
        "recursive: true",
    ),
    "action with two keys": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL.replace("~/I}", "~/I, run: x}"),
        12,
        "steps[1].route.routes.invoice",
        "exactly one of move_to",
    ),
    "action word": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL + "      default: discard\n",
        13,
        "steps[1].route.default",
        "'discard' is not an action",
    ),
    "webhook scheme": (
        WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL + "      default: {webhook: 'ftp://x'}\n",
        13,
        "steps[1].route.default.webhook",
        "http://",
    ),
    "record value": (
        "name: t\nrecord: all\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        2,
        "record",
        "expected 'full' or 'metadata', got 'all'",
    ),
    "retention": (
        "name: t\nretention: forever\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\n",
        2,
        "retention",
        "'forever' is not a duration",
    ),
    "trigger not a mapping": ("name: t\ntrigger: watch\nsteps: [summarise: ]\n", 2, "trigger", "expected a mapping"),
    "file action on a schedule": (
        "name: t\ntrigger: {schedule: {every: 1h}}\nsteps:\n" + CLASSIFY_KIND + ROUTE_TAIL,
        10,
        "steps[1].route.routes.invoice.move_to",
        "move_to works on the run's input file, and a schedule trigger gives none",
    ),
    "run action on a schedule": (
        "name: t\ntrigger: {schedule: {every: 1h}}\nsteps:\n  - summarise:\n  - route: {default: {run: other}}\n",
        5,
        "steps[1].route.default.run",
        "run works on the run's input file",
    ),
    "prompt schema type": (
        WATCH_HEAD + "  - prompt:\n      instruction: Say it.\n      schema:\n"
        "        type: object\n        properties:\n          n: {type: numbr}\n",
        11,
        "steps[0].prompt.schema.properties.n.type",
        "'numbr' is not a JSON-schema type",
    ),
    "min_confidence range": (
        WATCH_HEAD + "  - classify:\n      labels: [a]\n      min_confidence: 2\n",
        8,
        "steps[0].classify.min_confidence",
        "at most 1",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=list(ERRORS))
def test_error_names_line_and_key(tmp_path: Path, case: str) -> None:
    text, line, key, fragment = ERRORS[case]
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key), str(error)
    assert fragment in error.problem
    assert str(error).startswith(f"{tmp_path / 'flow.yaml'}, line {line}, key '{key}': ")
    assert "\n" not in str(error)


def test_a_run_target_that_is_no_workflow_name_is_refused_with_the_rule(tmp_path: Path) -> None:
    error = error_of(tmp_path, WATCH_HEAD + CLASSIFY_KIND + ROUTE_TAIL + "      default: {run: Other Flow}\n")
    assert (error.line, error.key) == (13, "steps[1].route.default.run")
    assert error.problem == "'Other Flow' is not a workflow name ([a-z0-9-]+)"


def _allowed_actions() -> str:
    from daemon.plugins import registry

    return ", ".join(registry().actions)


@pytest.mark.parametrize(
    ("default", "key", "problem"),
    [
        ("discard", "default", "'discard' is not an action; write keep or a mapping such as {move_to: ~/Folder}"),
        ("[keep]", "default", "an action is keep or a mapping such as {move_to: ~/Folder}"),
        ("{move_too: ~/x}", "default.move_too", "unknown key 'move_too' (did you mean 'move_to'?); allowed keys are "),
        ("{zzz: ~/x}", "default.zzz", "unknown key 'zzz'; allowed keys are "),
        ("{move_to: ~/x, run: t}", "default", "an action needs exactly one of {allowed}, not 2"),
        ("{keep: false}", "default.keep", "keep: false does nothing; write keep: true or another action"),
    ],
)
def test_a_mistaken_action_is_one_sentence_at_its_key(tmp_path: Path, default: str, key: str, problem: str) -> None:
    error = error_of(tmp_path, WATCH_HEAD + f"  - route:\n      default: {default}\n")
    allowed = _allowed_actions()
    expected = problem.replace("{allowed}", allowed) + (allowed if problem.endswith("are ") else "")
    assert (error.line, error.key, error.problem) == (7, f"steps[0].route.{key}", expected)


def test_keep_as_a_word_and_as_a_mapping_is_the_same_action(tmp_path: Path) -> None:
    word = load_workflow(write(tmp_path, WATCH_HEAD + "  - route: {default: keep}\n"))
    mapping = load_workflow(write(tmp_path, WATCH_HEAD + "  - route: {default: {keep: true}}\n", "other.yaml"))
    assert word.steps[0].spec.default == mapping.steps[0].spec.default
    assert (word.steps[0].spec.default.name, word.steps[0].spec.default.target) == ("keep", None)


def test_a_file_action_in_a_scheduled_workflow_names_the_trigger(tmp_path: Path) -> None:
    error = error_of(
        tmp_path, "name: t\ntrigger: {schedule: {every: 1h}}\nsteps:\n  - route: {default: {copy_to: ~/x}}\n"
    )
    assert (error.line, error.key) == (4, "steps[0].route.default.copy_to")
    assert error.problem == "copy_to works on the run's input file, and a schedule trigger gives none"


def test_yaml_syntax_error_gives_the_mark_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, "name: t\ntrigger: {watch: {path: x}\nsteps: [summarise: ]\n")
    assert error.line == 3 and error.key is None
    assert "not valid YAML" in error.problem and "line 2" in error.problem


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    error = error_of(tmp_path, "name: t\ntrigger: {watch: {path: x}}\nsteps: [summarise: ]\nname: u\n")
    assert (error.line, error.key) == (4, "name")
    assert "appears twice (lines 1 and 4)" in error.problem
    nested = error_of(tmp_path, WATCH_HEAD + "  - classify:\n      labels:\n        a: x\n        a: y\n")
    assert (nested.line, nested.key) == (9, "steps[0].classify.labels.a")


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "the file is empty"),
    ("# only a comment\n", "the file is empty"),
    ("- name: t\n", "holds a list"),
    ("just words\n", "holds a single value"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
])  # fmt: skip
def test_files_that_are_not_a_mapping(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in error_of(tmp_path, text).problem


def test_several_errors_first_by_line_others_kept(tmp_path: Path) -> None:
    error = error_of(
        tmp_path,
        """\
        name: t
        trigger:
          watch:
            path: x
            recursive: maybe
        steps:
          - summarise: {max_words: 0}
        record: all
        """,
    )
    assert (error.line, error.key) == (5, "trigger.watch.recursive")
    assert [(e.line, e.key) for e in error.others] == [(7, "steps[0].summarise.max_words"), (8, "record")]


def test_unreadable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(WorkflowError, match="not UTF-8"):
        load_workflow(path)


# ---------------------------------------------------------------- folders

GOOD = "name: {name}\ntrigger: {{watch: {{path: ~/in}}}}\nsteps: [summarise: ]\n"


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(name="alpha"), "a.yaml")
    write(tmp_path, "name: broken\nsteps: nope\n", "b.yaml")
    write(tmp_path, GOOD.format(name="gamma"), "c.yml")
    write(tmp_path, GOOD.format(name="hidden"), ".hidden.yaml")
    write(tmp_path, GOOD.format(name="other"), "notes.txt")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", GOOD.format(name="nested"), "d.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert sorted(workflows) == ["alpha", "gamma"]
    assert workflows["gamma"].source == tmp_path / "c.yml"
    assert [e.path.name for e in errors] == ["b.yaml"]


def test_duplicate_names_fail_the_later_file(tmp_path: Path) -> None:
    write(tmp_path, GOOD.format(name="same"), "a.yaml")
    write(tmp_path, "# second\n" + GOOD.format(name="same"), "b.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert workflows["same"].source == tmp_path / "a.yaml"
    assert len(errors) == 1 and errors[0].path == tmp_path / "b.yaml"
    assert (errors[0].line, errors[0].key) == (2, "name") and "already used by" in errors[0].problem


RUNNER = (
    WATCH_HEAD.replace("name: t", "name: runner")
    + CLASSIFY_KIND
    + """\
  - route:
      by: kind
      routes:
        invoice: {run: TARGET}
"""
)  # the run key is on line 12


def test_run_target_must_be_a_loaded_workflow(tmp_path: Path) -> None:
    write(tmp_path, RUNNER.replace("TARGET", "pay-bills"), "runner.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert workflows == {}
    assert (errors[0].line, errors[0].key) == (12, "steps[1].route.routes.invoice.run")
    assert "no loaded workflow named 'pay-bills'" in errors[0].problem
    write(tmp_path, GOOD.format(name="pay-bills"), "pay.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert sorted(workflows) == ["pay-bills", "runner"] and errors == []


def test_run_targets_cascade_and_self(tmp_path: Path) -> None:
    write(tmp_path, RUNNER.replace("TARGET", "missing").replace("runner", "first"), "a.yaml")
    write(tmp_path, RUNNER.replace("TARGET", "first").replace("runner", "second"), "b.yaml")
    write(tmp_path, RUNNER.replace("TARGET", "itself").replace("runner", "itself"), "c.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert workflows == {}
    problems = {e.path.name: e.problem for e in errors}
    assert "'missing'" in problems["a.yaml"] and "'first'" in problems["b.yaml"]
    assert "cannot run itself" in problems["c.yaml"]


def test_runs_input_must_name_a_loaded_workflow(tmp_path: Path) -> None:
    write(tmp_path, "name: digest\ntrigger: {schedule: {every: 1d}}\ninput:\n  runs:\n    workflow: sort\n"
          "steps: [summarise: ]\n", "digest.yaml")  # fmt: skip
    _, errors = load_workflows(tmp_path)
    assert (errors[0].line, errors[0].key) == (5, "input.runs.workflow")
    write(tmp_path, GOOD.format(name="sort"), "sort.yaml")
    workflows, errors = load_workflows(tmp_path)
    assert sorted(workflows) == ["digest", "sort"] and errors == []


def test_missing_folder_is_one_error(tmp_path: Path) -> None:
    workflows, errors = load_workflows(tmp_path / "nowhere")
    assert workflows == {} and len(errors) == 1 and "does not exist" in str(errors[0])


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)),
    ("1d", timedelta(days=1)), ("90d", timedelta(days=90)), ("1w", timedelta(weeks=1)),
    ("1h30m", timedelta(minutes=90)), (" 10 minutes ", timedelta(minutes=10)), ("45", timedelta(seconds=45)),
    (45, timedelta(seconds=45)), (timedelta(hours=1), timedelta(hours=1)),
])  # fmt: skip
def test_parse_duration(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "soon", "5y", "-5m", "0s", "1.5h", 0, True, None])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(bad)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)
