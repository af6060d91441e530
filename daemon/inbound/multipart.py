"""The parts of a `multipart/form-data` body, read with python-multipart (the parser Starlette uses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MAX_PARTS = 100  # a form with more is not the one-file upload a hook takes


class MalformedMultipart(ValueError):
    """The body is not well-formed multipart/form-data; the message says what is wrong."""


@dataclass
class Part:
    """One part: its headers (lower-case names) and its bytes."""

    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    @property
    def disposition(self) -> tuple[str, dict[str, str]]:
        kind, params = parse_options_header(self.headers.get("content-disposition", ""))
        return kind.decode("latin-1").lower(), {k.decode("latin-1"): _text(v) for k, v in params.items()}

    @property
    def name(self) -> str:
        return self.disposition[1].get("name", "")

    @property
    def filename(self) -> str | None:
        """The file name the sender gave, or None for a plain field."""
        return self.disposition[1].get("filename")

    @property
    def content_type(self) -> str:
        kind, _ = parse_options_header(self.headers.get("content-type", "application/octet-stream"))
        return kind.decode("latin-1").lower() or "application/octet-stream"


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class _Collector:
    """The parser's callbacks: build `Part`s as the body streams through."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self._begin, "on_part_data": self._data, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end, "on_end": self._end,
        }  # fmt: skip

    def _begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise MalformedMultipart(f"it has more than {MAX_PARTS} parts")
        self.parts.append(Part())

    def _data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data += data[start:end]

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self.parts[-1].headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field, self._value = bytearray(), bytearray()

    def _end(self) -> None:
        self.ended = True


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Every part of `body`; `MalformedMultipart` when the boundary is missing or the body is cut or broken."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedMultipart("its Content-Type names no boundary")
    collector = _Collector()
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise MalformedMultipart(str(exc) or type(exc).__name__) from exc
    if not collector.ended:
        raise MalformedMultipart("it ends before its closing boundary")
    return collector.parts
