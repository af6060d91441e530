"""Cleaning and checking what a model answered. Pure functions, no I/O."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from daemon.errors import BadAnswer

_THINK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
# An unterminated block (the answer was cut off mid-thought) leaves no usable answer after it.
_THINK_OPEN = re.compile(r"<(think|thinking|reasoning)>.*\Z", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.DOTALL)
_LABEL_TRIM = " \t\r\n.,;:!?\"'`*_()[]"


def split_thinking(text: str) -> tuple[str, str | None]:
    """Remove `<think>` blocks; return the answer and what was thought, if anything."""
    if "<" not in text:  # no block can start: most answers, spared three passes of the patterns
        return text.strip(), None
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
    for candidate in _candidates(answer):
        try:
            value = _DECODER.decode(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise BadAnswer(f"the answer is not a JSON object: {_excerpt(answer)}", raw=text)


def _candidates(answer: str) -> Iterator[str]:
    """Where the object may be, in order; looked for only when the bare answer is not one (it mostly is)."""
    yield answer
    for fenced in _FENCE.finditer(answer):
        yield fenced.group(1).strip()
    start, end = answer.find("{"), answer.rfind("}")
    if 0 <= start < end:
        yield answer[start : end + 1]


class JsonNumber(float):
    """A float from a JSON answer that remembers how it was written ("1249.50", not 1249.5)."""

    text: str

    @classmethod
    def parse(cls, literal: str) -> JsonNumber:
        number = cls(literal)
        number.text = literal
        return number


# One decoder for every answer: `json.loads` with an option makes a new one at each call.
_DECODER = json.JSONDecoder(parse_float=JsonNumber.parse)


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
TEXT_KEY = "_text"  # beside the fields: each number field's answer as written, e.g. {"total": "1249.50"}


def check_fields(obj: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Check an object against a flat JSON schema's properties; return only the declared ones.

    Number fields become numbers ("1.234,50" → 1234.5); how the model wrote each one is kept
    under `_text` ({"total": "1.234,50"}), so a template can print an amount exactly as answered.
    """
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    missing = sorted(name for name in required if name not in obj)
    if missing:
        raise BadAnswer(f"the answer lacks the field(s) {', '.join(missing)}", raw=json.dumps(obj))
    result = {}
    texts: dict[str, str | None] = {}
    for name, prop in properties.items():
        value = obj.get(name)
        result[name] = _coerce(name, value, prop)
        if _is_numeric(prop):
            texts[name] = _as_written(value) if result[name] is not None else None
    if texts and TEXT_KEY not in properties:
        result[TEXT_KEY] = texts
    return result


def _is_numeric(prop: dict[str, Any]) -> bool:
    kinds = prop.get("type", "string")
    return bool({"number", "integer"} & set([kinds] if isinstance(kinds, str) else kinds))


def _as_written(value: Any) -> str | None:
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return None


def _coerce(name: str, value: Any, prop: dict[str, Any]) -> Any:
    kinds = prop.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if value is None and "null" in kinds:
        return None
    for kind in kinds:
        if kind == "null":
            continue
        if kind in ("number", "integer") and isinstance(value, str):
            number = parse_number(value, whole=kind == "integer")
            if number is not None and (kind == "number" or float(number).is_integer()):
                return number if kind == "number" else int(number)
        if kind == "integer" and isinstance(value, float) and value.is_integer():
            return int(value)
        if kind == "number" and isinstance(value, JsonNumber):
            return float(value)  # a plain float in the outputs; the written form is under _text
        types = _TYPES.get(kind, (object,))
        if isinstance(value, types) and not (kind in ("number", "integer") and isinstance(value, bool)):
            return value
    raise BadAnswer(f"field '{name}' should be {' or '.join(kinds)}, not {json.dumps(value)[:60]}")


def check_schema(obj: Any, schema: dict[str, Any]) -> Any:
    """`obj` when it matches the JSON schema in full (nested objects, required keys, enums, arrays).

    Otherwise `BadAnswer` naming where and what, e.g. "at items[0].price: 'x' is not of type
    'number'", which the re-ask passes on to the model. The schema itself was checked when the
    workflow loaded (`daemon.workflow.fields.json_schema`).
    """
    from jsonschema.exceptions import best_match  # loaded at the first schema (see fields.json_schema)
    from jsonschema.validators import validator_for

    error = best_match(validator_for(schema)(schema).iter_errors(obj))
    if error is None:
        return obj
    where = json_path(error.absolute_path) or "the top level"
    raise BadAnswer(f"the answer does not match the schema at {where}: {_clip(error.message)}", raw=json.dumps(obj))


def json_path(parts: Any) -> str:
    """`items[0].price` for the path ("items", 0, "price") into a JSON document."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clip(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MINUS = "-\u2212\u2012\u2013"
# "1.5 million", "12k": a multiplier the number alone would silently drop.
_MULTIPLIER = re.compile(
    r"\d\s*(?:k|m|mn|bn|mio|mrd|thousand|million|billion|trillion|tausend|millionen?|milliarden?)\b\.?", re.IGNORECASE
)


def parse_number(text: str, *, whole: bool = False) -> int | float | None:
    """The number a human or a model wrote, in any common notation; None when it is not one number.

    Plain notation first ("1249.50", "-3", "1e3"; a lone dot is a decimal point, unless `whole`
    numbers are expected: then "1.000" is a thousand); otherwise the thousands and decimal
    separators are worked out by price-parser: "1.234,50", "1,234.50", "1 234,50",
    "CHF 1'234.50", "12,5 %". A sign before the digits, or parentheses, make it negative. Text
    with digits beyond one amount (a date, a range) or a multiplier word is refused.
    """
    stripped = text.strip()
    if _PLAIN.fullmatch(stripped) and not (whole and "." in stripped):
        if not re.search(r"[.eE]", stripped):
            return int(stripped)
        number = float(stripped)
        return number if math.isfinite(number) else None
    if not stripped or _MULTIPLIER.search(stripped):
        return None
    from price_parser import Price  # here: with attrs, 15 ms of start-up for the first number not written plainly

    price = Price.fromstring(stripped.replace("%", " "))
    if price.amount is None or _digits(stripped) != _digits(price.amount_text or ""):
        return None
    first_digit = next(i for i, ch in enumerate(stripped) if ch.isdigit())
    negative = any(ch in _MINUS for ch in stripped[:first_digit]) or (
        stripped.startswith("(") and stripped.endswith(")")
    )
    amount = -price.amount if negative else price.amount
    exponent = amount.as_tuple().exponent
    return int(amount) if isinstance(exponent, int) and exponent >= 0 else float(amount)


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 1] + "…")
