"""Building blocks of the workflow models: the strict base, plain-sentence errors, checked value types."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from jinja2 import TemplateSyntaxError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from daemon.durations import parse_duration
from daemon.workflow.templates import check_template

if TYPE_CHECKING:
    from jsonschema.exceptions import SchemaError

NAME_PATTERN = re.compile(r"^[a-z0-9-]+$")
STEP_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
FIELD_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CRON_FIELD = re.compile(r"^[0-9*/,\-A-Za-z?]+$")
# Names the engine puts into every template's scope; a step id must not hide them.
RESERVED_STEP_IDS = frozenset({"file", "run", "now", "items"})


def problem(error_type: str, message: str, at: tuple[str | int, ...] = (), /, **ctx: Any) -> PydanticCustomError:
    """A validation error with a plain message; `at` extends its location below the validated value."""
    return PydanticCustomError(error_type, message, {"at": at, **ctx})


class StrictModel(BaseModel):
    """Unknown keys are errors that list the allowed ones; values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        from_file = bool(info.context and info.context.get("from_file"))
        allowed = cls.file_keys()
        names = set(allowed) if from_file else set(allowed) | set(cls.model_fields)
        for key in data:
            if key not in names:
                raise problem(
                    "unknown_key", "unknown key '{key}'; allowed keys are {allowed}",
                    (key,), key=str(key), allowed=", ".join(allowed),
                )  # fmt: skip
        return data

    @classmethod
    def file_keys(cls) -> list[str]:
        """The keys a workflow file may use for this model, in declaration order."""
        return [f.alias or name for name, f in cls.model_fields.items() if not f.exclude]


def _template(value: str) -> str:
    try:
        check_template(value)
    except TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if exc.lineno and "\n" in value.strip() else ""
        message = (exc.message or "syntax error").rstrip(".")
        raise problem("template_syntax", "the template does not compile: {reason}", reason=message + where) from None
    return value


def _expand_path(value: Path) -> Path:
    if str(value).strip() in ("", "."):
        raise problem("empty_path", "the path is empty; give a folder such as ~/Inbox")
    return value.expanduser()


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise problem("duration", "{reason}", reason=str(exc)) from None
    return value


def _since(value: str) -> str:
    return value if value == "last_run" else _duration(value)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise problem("blank", "this key needs a value, not empty text")
    return value


JSON_TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")


def json_schema(value: dict[str, Any]) -> dict[str, Any]:
    """`value` when it is a valid JSON schema (its draft's metaschema) describing a JSON object.

    For the `schema` of a `prompt` step: the answer is parsed as a JSON object, so the schema
    must describe one. Errors point into the schema (`at`), so the loader names the line.
    """
    # Imported here: jsonschema is a twentieth of the daemon's start-up, and only a workflow with
    # a `schema` needs it (answers are checked with it too: daemon.llm.answers).
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(value).check_schema(value)
    except SchemaError as exc:
        raise _schema_problem(exc) from None
    kind = value.get("type", "object")
    if "object" not in ([kind] if isinstance(kind, str) else kind):
        raise problem(
            "json_schema", "the answer must be a JSON object, so the schema's type must be 'object', not {kind}",
            ("type",), kind=repr(kind),
        )  # fmt: skip
    return value


def _schema_problem(exc: SchemaError) -> PydanticCustomError:
    at = tuple(exc.absolute_path)
    given = exc.instance
    if at and at[-1] == "type" and isinstance(given, str):
        close = difflib.get_close_matches(given, JSON_TYPES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return problem(
            "json_schema", "'{given}' is not a JSON-schema type; {hint}use one of {types}",
            at, given=given, hint=hint, types=", ".join(JSON_TYPES),
        )  # fmt: skip
    reason = " ".join(exc.message.split())
    return problem("json_schema", "the schema is not a valid JSON schema: {reason}", at, reason=reason[:160])


def _env_name(value: str) -> str:
    if not ENV_NAME_PATTERN.match(value):
        raise problem("env_name", "'{name}' is not an environment variable name; use letters, digits and "
                      "underscores, such as MAIL_PASSWORD", name=value)  # fmt: skip
    return value


TemplateSource = Annotated[str, AfterValidator(_template)]
TemplateStr = Annotated[str, AfterValidator(_not_blank), AfterValidator(_template)]
ExpandedPath = Annotated[Path, AfterValidator(_expand_path)]
Patterns = Annotated[list[str], BeforeValidator(_as_list)]
Duration = Annotated[str, AfterValidator(_duration)]
Since = Annotated[str, AfterValidator(_since)]
Text = Annotated[str, AfterValidator(_not_blank)]
JsonSchema = Annotated[dict[str, Any], AfterValidator(json_schema)]
# The NAME of an environment variable that holds a secret (`password_env`, `token_env`): never the secret.
EnvName = Annotated[str, AfterValidator(_env_name)]


def names_to_dict(value: Any) -> Any:
    """A list of names means each name with an empty value; a name with no value gets ""."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise problem("names", "each item of this list must be a name")
        seen = [item for i, item in enumerate(value) if item in value[:i]]
        if seen:
            raise problem("names", "'{name}' is listed twice", name=seen[0])
        return {item: "" for item in value}
    if isinstance(value, dict):
        return {key: "" if text is None else text for key, text in value.items()}
    return value
