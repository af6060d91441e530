"""Text that may hold file names which are not valid UTF-8, stored without loss.

Linux file names are bytes; Python hands a name that is not valid UTF-8 to us as a `str` with lone
surrogates (`os.fsdecode`, PEP 383), which neither SQLite nor PostgreSQL can store as text. Such a
value is stored as `PREFIX` + its bytes percent-encoded; every other value is stored as it is, so
ordinary names stay readable (and searchable) in the database. A value that happens to start with
`PREFIX` is encoded too, which makes the mapping one-to-one.
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes, unquote_to_bytes

PREFIX = "\x1bfsbytes:"  # ESC first: no name a person types starts like this
_SAFE = "/ ._-~()[],+=@"  # kept readable in the encoded form


def encode(value: str) -> str:
    """The storable form of `value`: itself, unless it holds lone surrogates (or starts with PREFIX)."""
    if not value.startswith(PREFIX):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    return PREFIX + quote_from_bytes(_bytes(value), safe=_SAFE)


def decode(stored: str) -> str:
    """The value `encode` was given."""
    if not stored.startswith(PREFIX):
        return stored
    return unquote_to_bytes(stored[len(PREFIX) :]).decode("utf-8", "surrogateescape")


def printable(value: str) -> str:
    """`value` for a terminal or a log: bytes that are not UTF-8 shown as U+FFFD (nothing raises)."""
    return _bytes(value).decode("utf-8", "replace")


def _bytes(value: str) -> bytes:
    try:
        return value.encode("utf-8", "surrogateescape")  # the bytes of a file name, exactly
    except UnicodeEncodeError:  # a lone surrogate no file name can hold: no bytes to restore
        return value.encode("utf-8", "replace")
