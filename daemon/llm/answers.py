"""Cleaning and checking what a model answered. Pure functions, no I/O."""

from __future__ import annotations

import json
import re
from typing import Any

from daemon.errors import BadAnswer

_THINK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
# An unterminated block (the answer was cut off mid-thought) leaves no usable answer after it.
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>.*\Z", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_LABEL_TRIM = " \t\r\n.,;:!?\"'`*_()[]"


def split_thinking(text: str) -> tuple[str, str | None]:
    """Remove `<think>` blocks; return the answer and what was thought, if anything."""
    thoughts = [m.group(2).strip() for m in _THINK.finditer(text)]
    answer = _THINK.sub("", text)
    answer = _THINK_OPEN.sub("", answer)
    return answer.strip(), ("\n".join(thoughts) or None)


def clean_text(text: str) -> str:
    """A free-text answer without reasoning blocks and surrounding whitespace."""
    return split_thinking(text)[0]


def parse_json_answer(text: str) -> dict[str, Any]:
    """The JSON object in an answer: bare, fenced, or the outermost `{...}` in prose."""
    answer = clean_text(text)
    candidates = [answer]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(answer)]
    start, end = answer.find("{"), answer.rfind("}")
    if 0 <= start < end:
        candidates.append(answer[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise BadAnswer(f"the answer is not a JSON object: {_excerpt(answer)}", raw=text)


def match_label(value: Any, labels: list[str]) -> str | None:
    """The declared label the model meant, forgiving case and trailing punctuation; else None."""
    if not isinstance(value, str):
        return None
    wanted = value.strip(_LABEL_TRIM).casefold()
    for label in labels:
        if label.casefold() == wanted:
            return label
    return None


def parse_confidence(value: Any) -> float | None:
    """A confidence in [0, 1]; percentages (e.g. 85) are scaled; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        return None
    if 1 < number <= 100:
        number /= 100
    return number if 0 <= number <= 1 else None


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def check_fields(obj: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Check an object against a flat JSON schema's properties; return only the declared ones."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    missing = sorted(name for name in required if name not in obj)
    if missing:
        raise BadAnswer(f"the answer lacks the field(s) {', '.join(missing)}", raw=json.dumps(obj))
    result = {}
    for name, prop in properties.items():
        value = obj.get(name)
        result[name] = _coerce(name, value, prop)
    return result


def _coerce(name: str, value: Any, prop: dict[str, Any]) -> Any:
    kinds = prop.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if value is None and "null" in kinds:
        return None
    for kind in kinds:
        if kind == "null":
            continue
        if kind == "number" and isinstance(value, str):
            number = _number(value)
            if number is not None:
                return number
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        types = _TYPES.get(kind, (object,))
        if isinstance(value, types) and not (kind in ("number", "integer") and isinstance(value, bool)):
            return value
    raise BadAnswer(f"field '{name}' should be {' or '.join(kinds)}, not {json.dumps(value)[:60]}")


def _number(text: str) -> float | int | None:
    cleaned = re.sub(r"[^\d.,\-]", "", text)
    if cleaned.count(",") and cleaned.count("."):
        cleaned = cleaned.replace(",", "")
    elif cleaned.count(",") == 1 and len(cleaned.split(",")[1]) != 3:
        cleaned = cleaned.replace(",", ".")
    else:
        cleaned = cleaned.replace(",", "")
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return int(number) if number.is_integer() and "." not in cleaned else number


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
