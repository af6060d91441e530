"""Sandboxed templates: rendering, strict undefined names, the sandbox, the slug filter."""

from __future__ import annotations

import pytest
from jinja2 import TemplateSyntaxError

from daemon.errors import TemplateError
from daemon.workflow.templates import ENVIRONMENT, check_template, render, slug

SCOPE = {
    "file": {"name": "Invoice 42.pdf", "stem": "Invoice 42", "suffix": ".pdf"},
    "kind": {"label": "invoice", "confidence": 0.9},
    "fields": {"items": ["a", "b"], "keys": "k"},
    "summary": {"text": "A bill & <more>"},
}


def test_render_with_attribute_access_on_dicts() -> None:
    assert render("{{ kind.label }}/{{ file.stem }}{{ file.suffix }}", SCOPE) == "invoice/Invoice 42.pdf"
    assert render("{{ kind['confidence'] }}", SCOPE) == "0.9"


def test_mapping_keys_win_over_dict_methods() -> None:
    assert render("{{ fields.items | join(',') }} {{ fields.keys }}", SCOPE) == "a,b k"


def test_no_autoescape_trailing_newline_kept_and_none_empty() -> None:
    assert render("{{ summary.text }}\n", SCOPE) == "A bill & <more>\n"
    assert render("[{{ kind.label }}]", {"kind": {"label": None}}) == "[]"


def test_undefined_name_is_a_template_error() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ kind.label }}", {})
    assert str(caught.value) == "template '{{ kind.label }}' failed: 'kind' is undefined"


def test_undefined_attribute_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="has no attribute 'colour'"):
        render("{{ kind.colour }}", SCOPE)
    with pytest.raises(TemplateError, match="is undefined"):
        render("{% if missing %}x{% endif %}", SCOPE)


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ file.__class__ }}",
    "{{ (1).__class__.__base__ }}",
    "{{ cycler.__init__.__globals__ }}",
])  # fmt: skip
def test_sandbox_blocks_internals(source: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source, SCOPE)
    message = str(caught.value)
    assert message.startswith("template '") and ("unsafe" in message or "undefined" in message)


def test_check_template_raises_syntax_errors() -> None:
    check_template("{{ a }} {% for x in y %}{{ x }}{% endfor %}")
    with pytest.raises(TemplateSyntaxError):
        check_template("{{ a }")
    with pytest.raises(TemplateSyntaxError):
        check_template("{% for x in y %}")


def test_render_turns_syntax_and_runtime_errors_into_one_sentence() -> None:
    with pytest.raises(TemplateError, match="failed"):
        render("{% if %}", {})
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render("{{ 1 / 0 }}", {})
    with pytest.raises(TemplateError) as caught:
        render("line one\n" * 20 + "{{ nope }}", {})
    assert "\n" not in str(caught.value) and "…" in str(caught.value)


def test_templates_are_compiled_once() -> None:
    from daemon.workflow.templates import _compile

    assert _compile("{{ a }}-cached") is _compile("{{ a }}-cached")


@pytest.mark.parametrize(("value", "expected"), [
    ("Invoice 42.pdf", "invoice-42-pdf"),
    ("  Héllo, Wörld!! -- ", "héllo-wörld"),
    ("ACME GmbH / Rechnung #7", "acme-gmbh-rechnung-7"),
    ("../../etc/passwd", "etc-passwd"),
    ("Привет мир", "привет-мир"),
    ("株式会社トヨタ", "株式会社トヨタ"),
    ("한국어 문서", "한국어-문서"),
    ("Straße", "straße"),
    (".hidden", "hidden"),
    ("a/b\x00c\nd", "a-b-c-d"),
    ("", "untitled"),
    (None, "untitled"),
    (42, "42"),
])  # fmt: skip
def test_slug(value: object, expected: str) -> None:
    assert slug(value) == expected


def test_slug_of_non_latin_names_never_writes_a_bare_suffix() -> None:
    for stem in ("Привет мир", "株式会社トヨタ"):
        name = render("{{ file.stem | slug }}.md", {"file": {"stem": stem}})
        assert name != ".md" and name.startswith(stem.split()[0].lower())


def test_slug_of_text_without_letters_is_a_distinct_fallback() -> None:
    first, second = slug("🎉🎉"), slug("---")
    assert first.startswith("untitled-") and second.startswith("untitled-") and first != second
    assert slug("🎉🎉") == first  # the same text, the same name


@pytest.mark.parametrize("text", ["株" * 300, "𠀋" * 300, "é" * 300, "x" * 300])
def test_slug_is_a_safe_file_name_within_the_byte_limit(text: str) -> None:
    made = slug(text)
    assert 0 < len(made) <= 80 and len(made.encode()) <= 200
    assert "/" not in made and "\x00" not in made and not made.startswith(".")


def test_slug_is_at_most_80_chars_and_a_filter() -> None:
    long = slug("word " * 40)
    assert len(long) <= 80 and not long.endswith("-")
    assert render("{{ kind.label | slug }}-{{ file.name | slug }}.md", SCOPE) == "invoice-invoice-42-pdf.md"


@pytest.mark.parametrize(
    "source",
    [
        "~/Out/invoices",
        "plain text\n",
        "a } b %} #} $x",
        "tabs\tand\nnewlines\n\n",
        "",
        "ümlaut/名前",
        "{{ kind.label }}",
    ],
)
def test_a_source_without_tags_renders_as_jinja_renders_it(source: str) -> None:
    # Sources with no "{" (most folders) skip Jinja; what they render to must not change.
    scope = {"kind": {"label": "invoice"}}
    assert render(source, scope) == ENVIRONMENT.from_string(source).render(scope)


def test_carriage_returns_are_still_turned_into_newlines() -> None:
    assert render("one\r\ntwo\rthree", {}) == "one\ntwo\nthree"


def test_a_template_still_sees_jinjas_own_globals():
    # Each compiled template keeps a copy of the environment's globals (a render iterated their ChainMap twice).
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}{% set n = namespace(x=4) %}{{ n.x }}", {}) == "0124"
