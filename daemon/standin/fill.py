"""How the stand-in "model" fills a JSON schema from a document, and how its weaker variant errs.

The normal model:
- an `enum` (a label): the value named most often in the document, as whole words, case-insensitive,
  `_`/`-`/camelCase read as spaces (ties and no mention at all: the one declared first);
- an array of enums: every value mentioned at least once, in declared order;
- a number property named `confidence`: 0.9, or 0.2 when no enum value was mentioned;
- any other property: a `Name: value` line of the document (the name matched like labels), coerced to
  the property's type (numbers ignore thousands separators, booleans: yes/true/1/on/x/ja/oui);
  absent: null when the schema allows it, else "", 0, false or [].

The weak model (a model in the `weak` switch, on a prompt containing `[[standin:hard]]`) differs in
exactly two ways, so a test can predict every disagreement:
1. every single `enum` gets the value named *least* often (ties: the one declared *last*), which is
   never the normal model's pick when two or more values are declared;
2. the first top-level property that is neither an enum nor `confidence` is changed: a string gets
   " (weak)" appended (null becomes "(weak)"), a number or integer gets 1 added (null counts as 0),
   a boolean flips (null becomes true), an array loses its last item (an empty one gets one item,
   changed by these rules from null), anything else becomes null (null becomes "(weak)").
Arrays of enums, summaries and free text are the same as the normal model's.
"""

from __future__ import annotations

import re
from typing import Any

_OBEY_LABEL = re.compile(r"answer with label\s+[\"'`]?([^\s\"'`]+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d)[,'\u00a0\u202f ](?=\d{3}(?!\d))")
_TRUE = {"yes", "y", "true", "1", "on", "x", "ja", "oui"}
_EMPTY: dict[str, Any] = {"string": "", "number": 0, "integer": 0, "boolean": False}
WEAK_SUFFIX = " (weak)"


def fill(schema: dict[str, Any], doc: str, quirks: frozenset[str], weak: bool = False) -> Any:
    """The model's answer to a JSON schema, from the document."""
    builder = _Builder(doc, quirks, schema.get("$defs") or {}, weak)
    answer = builder.value("value", schema)
    return builder.weaken(answer, schema) if weak and isinstance(answer, dict) else answer


def pick_label(labels: list[Any], doc: str) -> tuple[Any, bool]:
    """The label occurring most often in the document (ties: earliest); (label, found)."""
    best, best_count = labels[0], 0
    for label in labels:
        if (count := mentions(label, doc)) > best_count:
            best, best_count = label, count
    return best, best_count > 0


def weak_label(labels: list[Any], doc: str) -> Any:
    """The weak model's label: the one occurring least often in the document (ties: the last declared)."""
    counts = [mentions(label, doc) for label in labels]
    return labels[max(i for i, count in enumerate(counts) if count == min(counts))]


def mentions(label: Any, doc: str) -> int:
    """How often a label occurs in the document as whole words (0 for a non-string label)."""
    if not isinstance(label, str) or not label.strip():
        return 0
    return len(_words_pattern(label).findall(doc))


def _words_regex(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return r"[\s_\-]+".join(re.escape(p) for p in re.split(r"[\s_\-]+", spaced) if p)


def _words_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + _words_regex(name) + r"(?!\w)", re.IGNORECASE)


def _field_line(doc: str, name: str) -> str | None:
    label = _words_regex(name)
    line = re.search(rf"^[ \t>*#\-]*{label}[ \t*]*:[ \t]*(.*?)[ \t]*$", doc, re.IGNORECASE | re.MULTILINE)
    return line.group(1) if line and line.group(1) else None


def _number(text: str) -> float | None:
    found = _NUMBER.search(_THOUSANDS.sub("", text))
    return float(found.group()) if found else None


class _Builder:
    """Fills a JSON schema from a document, the way the stand-in "model" answers."""

    def __init__(self, doc: str, quirks: frozenset[str], defs: dict[str, Any], weak: bool) -> None:
        self.doc, self.quirks, self.defs, self.weak = doc, quirks, defs, weak
        self.found: list[bool] = []
        obey = _OBEY_LABEL.search(doc) if "obey" in quirks else None
        self.obey = obey.group(1).rstrip(".,;:!?)") if obey else None

    def value(self, name: str, schema: dict[str, Any]) -> Any:
        """The answer for one property."""
        schema, kind, nullable = self._resolve(schema)
        if schema.get("enum"):
            return self._label(list(schema["enum"]))
        if kind == "object":
            return self._object(schema)
        if kind == "array" and "enum" in self._resolve(schema.get("items") or {})[0]:
            return self._labels(list(self._resolve(schema["items"])[0]["enum"]))
        if self.obey is not None and kind == "string":
            return self.obey
        raw = _field_line(self.doc, name)
        value = None if raw is None else self._coerce(raw, kind, schema)
        if value is None and not nullable:
            return [] if kind == "array" else _EMPTY.get(kind)
        return value

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        out = {n: self.value(n, p) for n, p in props.items() if not self._is_confidence(n, p)}
        for name, prop in props.items():
            if self._is_confidence(name, prop):
                out[name] = 0.9 if not self.found or any(self.found) else 0.2
        out = {name: out[name] for name in props}
        return out | {name: None for name in schema.get("required") or [] if name not in out}

    def _is_confidence(self, name: str, schema: dict[str, Any]) -> bool:
        return name.lower() == "confidence" and self._resolve(schema)[1] == "number"

    def weaken(self, answer: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        """The weak model's change: the first property that is neither an enum nor `confidence`."""
        props: dict[str, Any] = self._resolve(schema)[0].get("properties") or {}
        for name, prop in props.items():
            resolved, kind, _ = self._resolve(prop)
            if not resolved.get("enum") and not self._is_confidence(name, prop) and name in answer:
                item_kind = self._resolve(resolved.get("items") or {})[1]
                return answer | {name: _weakened(answer[name], kind, item_kind)}
        return answer

    def _label(self, labels: list[Any]) -> Any:
        label, found = pick_label(labels, self.doc)
        self.found.append(found)
        if self.weak:
            label = weak_label(labels, self.doc)
        if "unknown_label" in self.quirks:
            label = "banana"
        elif self.obey is not None:
            label = self.obey
        if "wrong_case" in self.quirks and isinstance(label, str):
            label = label.upper() + "."
        return label

    def _labels(self, labels: list[Any]) -> list[Any]:
        return [label for label in labels if pick_label([label], self.doc)[1]]

    def _coerce(self, raw: str, kind: str | None, schema: dict[str, Any]) -> Any:
        if kind == "number":
            return _number(raw)
        if kind == "integer":
            number = _number(raw)
            return None if number is None else int(number)
        if kind == "boolean":
            return raw.strip(" .").lower() in _TRUE
        if kind == "array":
            items, item_kind, _ = self._resolve(schema.get("items") or {})
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            return [self._coerce(p, item_kind, items) for p in parts]
        return raw

    def _resolve(self, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
        """Follow $ref/anyOf/allOf; return (schema, main type, whether null is allowed)."""
        nullable = False
        for _ in range(16):
            if "$ref" in schema:
                schema = {**self.defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), **_sans(schema)}
            elif options := schema.get("anyOf") or schema.get("oneOf"):
                nullable |= any(o.get("type") == "null" for o in options)
                real = [o for o in options if o.get("type") != "null"] or [{"type": "null"}]
                schema = {**real[0], **_sans(schema)}
            elif len(schema.get("allOf") or ()) == 1:
                schema = {**schema["allOf"][0], **_sans(schema)}
            else:
                break
        kind = schema.get("type")
        if isinstance(kind, list):
            nullable |= "null" in kind
            kind = next((k for k in kind if k != "null"), None)
        if kind is None and "properties" in schema:
            kind = "object"
        return schema, kind, nullable


def _weakened(value: Any, kind: str | None, item_kind: str | None = None) -> Any:
    if kind == "string":
        return f"{value}{WEAK_SUFFIX}" if value is not None else WEAK_SUFFIX.strip()
    if kind in ("number", "integer"):
        return (value or 0) + 1
    if kind == "boolean":
        return not value if value is not None else True
    if kind == "array":
        return value[:-1] if value else [_weakened(None, item_kind)]
    return None if value is not None else WEAK_SUFFIX.strip()


def _sans(schema: dict[str, Any]) -> dict[str, Any]:
    # Keep the description beside a $ref/anyOf; everything else comes from the target.
    return {k: v for k, v in schema.items() if k == "description"}
