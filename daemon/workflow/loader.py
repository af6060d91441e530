"""Reading workflow files: YAML with line numbers, validation, and errors naming file, line and key."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from daemon.errors import WorkflowError
from daemon.llm.modelref import unknown_server
from daemon.workflow.schema import Workflow

Key = tuple[str | int, ...]
_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TOP_KEYS = "keys such as name, trigger and steps"


def dotted(key: Key) -> str | None:
    """`('steps', 1, 'classify')` as `steps[1].classify`; None for the top level."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


class _Builder:
    """Turns composed YAML nodes into plain data, recording the line of every key path."""

    def __init__(self, path: Path, loader: yaml.SafeLoader) -> None:
        self.path, self.loader = path, loader
        self.lines: dict[Key, int] = {}
        self._active: set[int] = set()

    def build(self, node: Node, key: Key) -> Any:
        """The Python value of `node`, found at `key`."""
        if id(node) in self._active:
            raise WorkflowError(self.path, "an alias refers to itself", _line(node), dotted(key))
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, key)
            if isinstance(node, SequenceNode):
                return [self._item(child, key + (i,)) for i, child in enumerate(node.value)]
            return self._scalar(node)
        finally:
            self._active.discard(id(node))

    def _item(self, node: Node, key: Key) -> Any:
        self.lines[key] = _line(node)
        return self.build(node, key)

    def _mapping(self, node: MappingNode, key: Key) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            name = self._key_text(key_node, key)
            line = _line(key_node)
            if name in result:
                first = self.lines[key + (name,)]
                raise WorkflowError(self.path, f"the key '{name}' appears twice (lines {first} and {line}); "
                                    "keep one", line, dotted(key + (name,)))  # fmt: skip
            self.lines[key + (name,)] = line
            result[name] = self.build(value_node, key + (name,))
        for source in merged:
            self._merge(result, source, key)
        return result

    def _merge(self, result: dict[str, Any], source: Node, key: Key) -> None:
        """YAML merge keys (`<<: *defaults`): explicit keys win, then earlier merged mappings."""
        nodes = source.value if isinstance(source, SequenceNode) else [source]
        for node in nodes:
            if not isinstance(node, MappingNode):
                raise WorkflowError(self.path, "'<<' must merge a mapping or a list of mappings",
                                    _line(node), dotted(key))  # fmt: skip
            lines_before = dict(self.lines)
            values = self._mapping(node, key)
            # Lines of explicit keys stay; the merged mapping only fills in the keys it adds.
            self.lines.update(lines_before)
            for name, value in values.items():
                result.setdefault(name, value)

    def _key_text(self, node: Node, key: Key) -> str:
        if not isinstance(node, ScalarNode):
            raise WorkflowError(self.path, "a key must be plain text, not a list or mapping",
                                _line(node), dotted(key))  # fmt: skip
        return node.value  # as written: `yes:` or `1:` are names here, not a bool or a number

    def _scalar(self, node: Node) -> Any:
        # Only `true`/`false` are booleans (YAML 1.2): `no`, `on`, `y` stay text, so labels such as
        # `no` survive; pydantic still accepts them where a boolean is expected. Dates stay text too.
        if node.tag == _BOOL_TAG and node.value.lower() not in ("true", "false"):
            return node.value
        if node.tag == _TIMESTAMP_TAG:
            return node.value
        return self.loader.construct_object(node, deep=True)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def parse_yaml(path: Path, text: str) -> tuple[Any, dict[Key, int]]:
    """The data in `text` and the line of each key path; WorkflowError for invalid YAML."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        builder = _Builder(path, loader)
        builder.lines[()] = _line(node)
        return builder.build(node, ()), builder.lines
    except yaml.MarkedYAMLError as exc:
        raise WorkflowError(path, *_yaml_problem(exc)) from exc
    except yaml.YAMLError as exc:
        raise WorkflowError(path, f"this is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError) -> tuple[str, int | None]:
    mark = exc.problem_mark or exc.context_mark
    reason = (exc.problem or exc.context or "unreadable").rstrip(".")
    context = exc.context if exc.problem else None
    if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
        reason += f" ({context} that starts on line {exc.context_mark.line + 1})"
    elif context:
        reason += f" ({context})"
    return f"this is not valid YAML: {reason}", (mark.line + 1 if mark else None)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise WorkflowError(path, "the file is not UTF-8 text") from exc
    except OSError as exc:
        raise WorkflowError(path, f"the file cannot be read ({exc.strerror or exc})") from exc


def load_workflow(path: Path) -> Workflow:
    """The workflow in the file at `path`; raises WorkflowError naming the file, line and key."""
    return _load(Path(path))[0]


def _load(path: Path) -> tuple[Workflow, dict[Key, int]]:
    data, lines = parse_yaml(path, _read(path))
    if data is None:
        raise WorkflowError(path, f"the file is empty; a workflow is a mapping of {_TOP_KEYS}")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        raise WorkflowError(path, f"the file holds {kind}; a workflow is a mapping of {_TOP_KEYS}", 1)
    try:
        workflow = Workflow.model_validate(data, context={"from_file": True})
    except ValidationError as exc:
        raise _first_error(path, exc, lines) from None
    return workflow.model_copy(update={"source": path}), lines


def _first_error(path: Path, exc: ValidationError, lines: dict[Key, int]) -> WorkflowError:
    """The error with the lowest line; the others ride along as `.others`."""
    found = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if part != "[key]")
        loc += tuple((error.get("ctx") or {}).get("at", ()))
        found.append(WorkflowError(path, describe(error), _line_of(loc, lines), dotted(loc)))
    found.sort(key=lambda e: e.line or 0)
    first = found[0]
    first.others = found[1:]  # type: ignore[attr-defined]
    return first


_EXPECTED = {
    "string": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
    "list": "a list", "dict": "a mapping of keys and values", "model": "a mapping of keys and values",
    "model_attributes": "a mapping of keys and values", "path": "a path", "none": "nothing",
}  # fmt: skip
_BOUNDS = {"greater_than": "more than {gt}", "greater_than_equal": "at least {ge}",
           "less_than": "less than {lt}", "less_than_equal": "at most {le}"}  # fmt: skip


def describe(error: dict[str, Any]) -> str:
    """One plain clause for one pydantic error, without its location."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    base = kind.rsplit("_", 1)[0] if kind.endswith(("_type", "_parsing")) else None
    if kind == "missing":
        return "this required key is missing"
    if base in _EXPECTED or kind == "int_from_float":
        expected = _EXPECTED.get(base or "int", "a whole number")
        if given is None:
            return f"this key has no value; expected {expected}"
        return f"expected {expected}, got {_shown(given)}"
    if kind in _BOUNDS:
        bounds = {k: _shown(v) for k, v in ctx.items()}
        return f"must be {_BOUNDS[kind].format(**bounds)}, got {_shown(given)}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {_shown(given)}"
    if kind == "too_short":
        return "this list is empty; give at least one item"
    if kind == "extra_forbidden":
        return "unknown key"
    message = str(error.get("msg", kind))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message[1:2].islower():  # leave acronyms such as "URL ..." alone
        message = message[:1].lower() + message[1:]
    return message.rstrip(".")


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _line_of(loc: Key, lines: dict[Key, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def load_workflows(
    folder: Path, servers: Collection[str] | None = None
) -> tuple[dict[str, Workflow], list[WorkflowError]]:
    """Every workflow file in `folder` by name, and an error for each file that could not be used.

    With `servers` (the configured model servers' names), a `model: NAME@SERVER` must name one of them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}, [WorkflowError(folder, "the workflows folder does not exist or is not a folder")]
    loaded: dict[str, tuple[Workflow, dict[Key, int]]] = {}
    errors: list[WorkflowError] = []
    for path in _workflow_files(folder):
        try:
            workflow, lines = _load(path)
        except WorkflowError as exc:
            errors.append(exc)
            continue
        if servers is not None and (error := _unknown_server(workflow, lines, servers)):
            errors.append(error)
            continue
        if workflow.name in loaded:
            other = loaded[workflow.name][0].source
            problem = f"the name '{workflow.name}' is already used by {other}; give each workflow its own"
            errors.append(WorkflowError(path, problem, lines.get(("name",)), "name"))
            continue
        loaded[workflow.name] = (workflow, lines)
    errors.extend(_drop_broken_references(loaded))
    return {name: workflow for name, (workflow, _) in loaded.items()}, errors


def _unknown_server(workflow: Workflow, lines: dict[Key, int], servers: Collection[str]) -> WorkflowError | None:
    """The error for a `model` (or shadow candidate) pinned to a server that is not configured, if any."""
    named: list[tuple[Key, str | None]] = [(("model",), workflow.model)]
    named += [(("shadow", i, "model"), shadow.model) for i, shadow in enumerate(workflow.shadow)]
    for key, model in named:
        if model and (problem := unknown_server(model, servers)):
            return WorkflowError(workflow.source or Path(workflow.name), problem, _line_of(key, lines), dotted(key))
    return None


def _workflow_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )  # fmt: skip


def _drop_broken_references(loaded: dict[str, tuple[Workflow, dict[Key, int]]]) -> list[WorkflowError]:
    """Remove each workflow that names one not loaded, until none does (removal can cascade)."""
    errors: list[WorkflowError] = []
    changed = True
    while changed:
        changed = False
        for name, (workflow, lines) in list(loaded.items()):
            error = _broken_reference(workflow, lines, set(loaded))
            if error is not None:
                errors.append(error)
                del loaded[name]
                changed = True
    return errors


def _broken_reference(workflow: Workflow, lines: dict[Key, int], names: set[str]) -> WorkflowError | None:
    path = workflow.source or Path(workflow.name)
    for key, target in references(workflow):
        if target == workflow.name and key[-1] == "run":
            problem = "a workflow cannot run itself on its own file"
        elif target not in names:
            problem = f"there is no loaded workflow named '{target}'"
        else:
            continue
        return WorkflowError(path, problem, _line_of(key, lines), dotted(key))
    return None


def references(workflow: Workflow) -> list[tuple[Key, str]]:
    """Each other workflow this one names (route `run:` actions, `input.runs`), with its key path."""
    found: list[tuple[Key, str]] = [
        ((*key, action.name), action.target) for key, action in workflow.actions() if action.kind.names_workflow
    ]
    if workflow.input is not None and workflow.input.runs is not None:
        found.append((("input", "runs", "workflow"), workflow.input.runs.workflow))
    return found
