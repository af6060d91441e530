"""Answers: numbers in every common notation, their written form kept, JSON schemas checked in full."""

from __future__ import annotations

import pytest
from pydantic import Field, ValidationError

from daemon.errors import BadAnswer
from daemon.llm.answers import check_fields, check_schema, parse_json_answer, parse_number
from daemon.workflow.fields import JsonSchema, StrictModel

# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "number"),
    [("1.234,50", 1234.5), ("1,234.50", 1234.5), ("1 234,50", 1234.5), ("1\u202f234,50", 1234.5),
     ("CHF 1'234.50", 1234.5), ("12,5 %", 12.5), ("45%", 45), ("EUR 1,234.50", 1234.5),
     ("€ 1.234.567,89", 1234567.89), ("12.345,6 EUR", 12345.6), ("3,000,000", 3_000_000),
     ("1249.50", 1249.5), ("1,5", 1.5), ("1,234", 1234), ("1.234", 1.234), ("12", 12), ("1e3", 1000.0),
     ("-12.50", -12.5), ("\u221212,50", -12.5), ("(12.50)", -12.5), ("EUR -12,50", -12.5), (" 7 ", 7)],
)  # fmt: skip
def test_numbers_in_common_notations(text, number):
    parsed = parse_number(text)
    assert parsed == number and type(parsed) is type(number)


@pytest.mark.parametrize("text", ["", "abc", "2026-12-15", "12 - 15", "1.5 million", "12k", "nan", "inf"])
def test_text_that_is_not_one_number_is_refused(text):
    assert parse_number(text) is None


def test_whole_numbers_read_a_lone_dot_as_a_thousands_separator():
    assert parse_number("1.000", whole=True) == 1000
    assert parse_number("1.000") == 1.0


SCHEMA = {
    "type": "object",
    "properties": {
        "total": {"type": ["number", "null"]},
        "count": {"type": ["integer", "null"]},
        "vendor": {"type": ["string", "null"]},
    },
    "required": ["total", "count", "vendor"],
}


def test_a_european_amount_is_the_right_number():
    fields = check_fields({"total": "1.234,50", "count": "1.000", "vendor": "ACME"}, SCHEMA)
    assert fields["total"] == 1234.5 and fields["count"] == 1000


def test_the_answer_text_of_each_number_is_kept_beside_it():
    fields = check_fields(parse_json_answer('{"total": 1249.50, "count": 3, "vendor": "ACME"}'), SCHEMA)
    assert fields["total"] == 1249.5 and type(fields["total"]) is float
    assert fields["_text"] == {"total": "1249.50", "count": "3"}
    fields = check_fields({"total": "CHF 1'234.50", "count": None, "vendor": None}, SCHEMA)
    assert fields["_text"] == {"total": "CHF 1'234.50", "count": None}


def test_a_declared_field_named_text_is_never_overwritten():
    schema = {"properties": {"_text": {"type": "string"}, "n": {"type": "number"}}}
    assert check_fields({"_text": "mine", "n": 2}, schema) == {"_text": "mine", "n": 2}


def test_a_money_amount_renders_as_answered():
    from daemon.workflow.templates import render

    fields = check_fields(parse_json_answer('{"total": 1249.50, "count": 1, "vendor": "x"}'), SCHEMA)
    assert render("{{ fields._text.total }} / {{ fields.total }}", {"fields": fields}) == "1249.50 / 1249.5"


@pytest.mark.parametrize(
    ("answer", "found"),
    [('{"label": "invoice"}', "invoice"),
     ('<think>it asks for payment</think>\n{"label": "invoice"}', "invoice"),
     ('Here is the JSON you asked for:\n```json\n{"label": "letter"}\n```', "letter"),
     ('```\n[1, 2]\n```\nand the object: {"label": "letter"}', "letter"),  # a fenced list is passed over
     ('Sure. {"label": "invoice", "why": {"amount": 12.50}} Anything else?', "invoice")],
)  # fmt: skip
def test_the_json_object_is_found_bare_fenced_or_in_prose(answer, found):
    assert parse_json_answer(answer)["label"] == found


def test_an_answer_without_a_json_object_is_refused_with_an_excerpt():
    with pytest.raises(BadAnswer, match="not a JSON object: 'Sure! Here is"):
        parse_json_answer("Sure! Here is what you asked for: [1, 2]")


# --------------------------------------------------------------------------- JSON schemas

NESTED = {
    "type": "object",
    "properties": {
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"price": {"type": "number"}, "kind": {"enum": ["goods", "service"]}},
                "required": ["price"],
            },
        },
        "buyer": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    },
    "required": ["lines", "buyer"],
}


@pytest.mark.parametrize(
    ("answer", "words"),
    [({"lines": [{"price": "x"}], "buyer": {"name": "A"}}, "at lines[0].price: 'x' is not of type 'number'"),
     ({"lines": [{}], "buyer": {"name": "A"}}, "at lines[0]: 'price' is a required property"),
     ({"lines": [], "buyer": {}}, "at buyer: 'name' is a required property"),
     ({"lines": [{"price": 1, "kind": "gift"}], "buyer": {"name": "A"}}, "at lines[0].kind: 'gift' is not one of"),
     ({"lines": []}, "at the top level: 'buyer' is a required property"),
     ({"lines": {"price": 1}, "buyer": {"name": "A"}}, "at lines: {'price': 1} is not of type 'array'")],
)  # fmt: skip
def test_answers_are_checked_against_the_whole_schema(answer, words):
    with pytest.raises(BadAnswer) as caught:
        check_schema(answer, NESTED)
    assert words in str(caught.value) and str(caught.value).startswith("the answer does not match the schema")


def test_a_matching_answer_is_returned_as_it_is():
    answer = {"lines": [{"price": 1.5, "kind": "goods"}], "buyer": {"name": "A"}}
    assert check_schema(answer, NESTED) is answer


class _Prompt(StrictModel):
    schema_: JsonSchema | None = Field(None, alias="schema")


def _schema_error(schema: dict) -> tuple[str, tuple]:
    with pytest.raises(ValidationError) as caught:
        _Prompt.model_validate({"schema": schema})
    error = caught.value.errors()[0]
    return error["msg"], tuple(error["ctx"]["at"])


def test_a_valid_schema_loads():
    assert _Prompt.model_validate({"schema": NESTED}).schema_ == NESTED


def test_a_misspelt_type_deep_in_a_schema_is_named_with_its_place():
    bad = {"type": "object", "properties": {"lines": {"type": "array", "items": {"type": "numbr"}}}}
    message, at = _schema_error(bad)
    assert message.startswith("'numbr' is not a JSON-schema type; did you mean 'number'?")
    assert at == ("properties", "lines", "items", "type")


def test_an_invalid_keyword_value_is_a_schema_error():
    message, at = _schema_error({"type": "object", "required": "name"})
    assert message == "the schema is not a valid JSON schema: 'name' is not of type 'array'" and at == ("required",)


def test_a_schema_must_describe_an_object():
    message, at = _schema_error({"type": "array", "items": {"type": "string"}})
    assert "must be 'object'" in message and at == ("type",)
