"""`gristmill search`: full-text search over runs, best hits first, with a snippet."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from rich.table import Table
from rich.text import Text

from daemon.store.search import SearchHit


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """A hit as `search --json` prints it; the snippet marks hits with « and »."""
    return {
        "id": hit.run_id,
        "workflow": hit.workflow,
        "status": hit.status.value,
        "input": hit.input_path,
        "created_at": hit.created_at.isoformat(),
        "rank": hit.rank,
        "snippet": hit.marked(),
    }


def hits_table(hits: list[SearchHit]) -> Table:
    """Hits as a table, the matched words in bold."""
    table = Table(box=None, pad_edge=False)
    for column in ("id", "workflow", "status", "input", "created", "snippet"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        snippet = Text()
        for piece, is_hit in hit.segments():
            snippet.append(piece, style="bold" if is_hit else None)
        name = PurePath(hit.input_path).name if hit.input_path else "—"
        created = hit.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        table.add_row(str(hit.run_id), hit.workflow, hit.status.value, name, created, snippet)
    return table
