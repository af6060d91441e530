"""When two answers of a step agree: the rules eval and shadow mode judge a candidate model by.

Values agree when they mean the same: text ignoring case and runs of white space, numbers equal
to within a millionth (1234.5 and 1234.50), lists item by item, null only with null. Keys that
start with `_` are bookkeeping (extract's `_text`, `_split`), never compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def public(output: Mapping[str, Any]) -> dict[str, Any]:
    """An output without its bookkeeping keys (`_text`, `_split`, …)."""
    return {key: value for key, value in output.items() if not key.startswith("_")}


def same(a: Any, b: Any) -> bool:
    """Whether two answer values mean the same (see the module docstring)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, str) and isinstance(b, str):
        return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b
