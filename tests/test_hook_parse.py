"""HTTP hook requests, parsed without a web server: every body kind and every refusal."""

from __future__ import annotations

import json

import pytest

from daemon.inbound import BodyKind, HookBody, HookLimits, HookRefusal, parse_hook, precheck

TOKEN = "t0ken-Abc"
LIMITS = HookLimits(max_bytes=1000)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _post(body: bytes, content_type: str | None, headers: dict | None = None, **kw) -> HookBody | HookRefusal:
    sent = {**AUTH, **({"Content-Type": content_type} if content_type else {}), **(headers or {})}
    return parse_hook(kw.get("method", "POST"), sent, body, token=kw.get("token", TOKEN), limits=LIMITS)


def _multipart(*parts: tuple[str, str | None, str, bytes], boundary: str = "XyZ", close: bool = True) -> bytes:
    out = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
                .encode() + data + b"\r\n")  # fmt: skip
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


def test_text_json_and_a_raw_file():
    text = _post(b"Server disk 91% full", "text/plain; charset=utf-8")
    assert (text.kind, text.content_type, text.suffix, text.data) == (BodyKind.TEXT, "text/plain", ".txt",
                                                                      b"Server disk 91% full")  # fmt: skip
    doc = _post(b'{"order": 17, "total": 9.5}', "application/json")
    assert (doc.kind, doc.json, doc.suffix) == (BodyKind.JSON, {"order": 17, "total": 9.5}, ".json")
    assert _post(b'{"a": 1}', "application/vnd.shop.order+json").json == {"a": 1}
    pdf = _post(b"%PDF-1.7 ...", "application/pdf", {"Content-Disposition": 'attachment; filename="../../inv 7.pdf"'})
    assert (pdf.kind, pdf.filename, pdf.suffix) == (BodyKind.FILE, "inv 7.pdf", ".pdf")
    assert _post(b"<p>hi</p>", "text/html").suffix == ".html"
    assert _post(b"\x00\x01", "application/octet-stream").suffix == ".bin"


def test_a_form_becomes_json_with_stable_bytes():
    one = _post(b"name=Anna&message=Hello+there&tags=a&tags=b", "application/x-www-form-urlencoded")
    two = _post(b"tags=a&message=Hello+there&tags=b&name=Anna", "application/x-www-form-urlencoded")
    assert one.kind is BodyKind.JSON and one.json == {"name": "Anna", "message": "Hello there", "tags": ["a", "b"]}
    assert one.data == two.data and json.loads(one.data) == one.json


def test_multipart_with_one_file_and_fields():
    body = _multipart(("note", None, "text/plain", b"from the shop"),
                      ("file", "C:\\scans\\invoice.PDF", "application/pdf", b"%PDF-1.4 data"))  # fmt: skip
    got = _post(body, "multipart/form-data; boundary=XyZ")
    assert isinstance(got, HookBody), got
    assert (got.kind, got.filename, got.content_type, got.data) == (BodyKind.FILE, "invoice.PDF", "application/pdf",
                                                                    b"%PDF-1.4 data")  # fmt: skip
    assert got.suffix == ".pdf" and got.fields == {"note": "from the shop"}


@pytest.mark.parametrize(
    ("headers", "token"),
    [({"Authorization": None}, TOKEN), ({"Authorization": "Bearer wrong"}, TOKEN),
     ({"Authorization": f"Basic {TOKEN}"}, TOKEN), ({"Authorization": f"Bearer {TOKEN}x"}, TOKEN),
     ({"Authorization": "Bearer "}, ""), ({}, None)],
)  # fmt: skip
def test_a_wrong_or_missing_token_is_401(headers, token):
    sent = {k: v for k, v in {**AUTH, **headers, "Content-Type": "text/plain"}.items() if v is not None}
    refused = parse_hook("POST", sent, b"hello", token=token, limits=LIMITS)
    assert isinstance(refused, HookRefusal) and refused.status == 401
    assert ("WWW-Authenticate", 'Bearer realm="gristmill"') in refused.headers
    assert TOKEN not in refused.message


def test_the_token_scheme_is_case_insensitive_and_headers_too():
    got = parse_hook("post", {"authorization": f"bearer {TOKEN}", "content-type": "text/plain"}, b"x",
                     token=TOKEN, limits=LIMITS)  # fmt: skip
    assert isinstance(got, HookBody)


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "words"),
    [
        (b"x" * 1001, "text/plain", {}, 413, "over the limit of 1000 (GRISTMILL_MAX_FILE_BYTES)"),
        (b"x", "text/plain", {"Content-Length": "5000"}, 413, "5000 bytes"),
        (b"x", "text/plain", {"Content-Length": "lots"}, 400, "Content-Length"),
        (b"<a/>", "application/xml", {}, 415, "application/xml is not taken"),
        (b"hello", None, {}, 415, "without a Content-Type"),
        (b"", "text/plain", {}, 400, "empty"),
        (b'{"a": ', "application/json", {}, 400, "not valid JSON (line 1, column 7)"),
        (b"\xff\xfe\x00binary", "application/x-www-form-urlencoded", {}, 400, "not form data"),
        (_multipart(("file", "a.pdf", "application/pdf", b"%PDF"), close=False), "multipart/form-data; boundary=XyZ",
         {}, 400, "ends before its closing boundary"),
        (b"garbage without boundaries", "multipart/form-data", {}, 400, "names no boundary"),
        (_multipart(("note", None, "text/plain", b"hi")), "multipart/form-data; boundary=XyZ", {}, 400,
         "exactly one file part, this one has 0"),
        (_multipart(("a", "a.txt", "text/plain", b"1"), ("b", "b.txt", "text/plain", b"2")),
         "multipart/form-data; boundary=XyZ", {}, 400, "this one has 2"),
    ],
)  # fmt: skip
def test_refusals(body, content_type, headers, status, words):
    refused = _post(body, content_type, headers)
    assert isinstance(refused, HookRefusal), refused
    assert refused.status == status and words in refused.message, refused


def test_only_post_and_precheck_refuses_before_the_body_is_read():
    assert _post(b"x", "text/plain", method="GET").status == 405
    unauthenticated = precheck("POST", {"Content-Length": "999999999", "Content-Type": "text/plain"}, TOKEN, LIMITS)
    assert unauthenticated.status == 401  # the token first: a stranger learns nothing about limits
    assert precheck("POST", {**AUTH, "Content-Length": "999999999"}, TOKEN, LIMITS).status == 413
    assert precheck("POST", {**AUTH, "Content-Type": "text/plain", "Content-Length": "10"}, TOKEN, LIMITS) is None
