"""Full-text search over runs: one query language, SQLite FTS5 or PostgreSQL's own text search.

The language: words (all must match), prefixes (`inv*`), phrases (`"due date"`). A word with
punctuation inside (`INV-2026`) is a phrase of its parts, as the index splits it the same way.
Best hits first; each with a snippet whose hits are marked. `gristmill search` and the dashboard
both call `search()`, which first indexes the runs SQLite's index has not taken yet (store/searchindex.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, text

from daemon.domain import RunStatus
from daemon.errors import UsageError
from daemon.store.db import reading
from daemon.store.searchindex import catch_up
from daemon.store.tables import UtcDateTime, runs

HIT_OPEN, HIT_CLOSE = "\ue000", "\ue001"  # private-use characters mark hits; documents never hold them raw
MAX_TERMS = 16

_PARTS = re.compile(r'"([^"]*)"?|(\S+)')
_WORD_SEPARATORS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Term:
    """Words that must appear next to each other (one word, or a phrase); the last may be a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class SearchQuery:
    """Every term must match."""

    terms: tuple[Term, ...]


@dataclass(frozen=True)
class RunFilter:
    """Which runs a listing or a search looks at; None means any."""

    workflow: str | None = None
    status: RunStatus | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True)
class SearchHit:
    """One run that matched, and where."""

    run_id: int
    workflow: str
    status: RunStatus
    input_path: str | None
    created_at: datetime
    rank: float
    snippet: str  # hits between HIT_OPEN and HIT_CLOSE

    def segments(self) -> list[tuple[str, bool]]:
        """The snippet as (text, is a hit) pieces, for whoever marks hits up."""
        pieces: list[tuple[str, bool]] = []
        for n, chunk in enumerate(self.snippet.split(HIT_OPEN)):
            hit, _, rest = chunk.partition(HIT_CLOSE) if n else ("", "", chunk)
            pieces += [(hit, True)] if hit else []
            pieces += [(rest, False)] if rest else []
        return pieces

    def marked(self, open_mark: str = "«", close_mark: str = "»") -> str:
        """The snippet as plain text with hits between marks."""
        return self.snippet.replace(HIT_OPEN, open_mark).replace(HIT_CLOSE, close_mark)


def parse_query(query: str) -> SearchQuery:
    """Words, `prefix*` and `"phrases"`; UsageError when nothing searchable is left."""
    terms: list[Term] = []
    for match in _PARTS.finditer(query):
        phrase, word = match.group(1), match.group(2)
        raw = phrase if phrase is not None else word
        prefix = phrase is None and raw.endswith("*")
        words = tuple(w.lower() for w in _WORD_SEPARATORS.split(raw) if w)
        if words:
            terms.append(Term(words, prefix))
    if not terms:
        raise UsageError(f'the search {query!r} has no words to look for; try a word, a prefix (inv*) or a "phrase"')
    if len(terms) > MAX_TERMS:
        raise UsageError(f"the search has {len(terms)} terms; use at most {MAX_TERMS}")
    return SearchQuery(tuple(terms))


def fts5_match(query: SearchQuery) -> str:
    """The query in FTS5's MATCH syntax; every word is quoted, so nothing in it is an operator."""
    return " AND ".join(f'"{" ".join(t.words)}"' + ("*" if t.prefix else "") for t in query.terms)


def pg_tsquery(query: SearchQuery) -> str:
    """The query in to_tsquery's syntax: `<->` between a phrase's words, `:*` for a prefix."""
    rendered = []
    for term in query.terms:
        words = [f"'{w}'" for w in term.words]
        if term.prefix:
            words[-1] += ":*"
        rendered.append("(" + " <-> ".join(words) + ")")
    return " & ".join(rendered)


def search(
    engine: Engine, query: str, *, where: RunFilter = RunFilter(), limit: int = 20, offset: int = 0
) -> list[SearchHit]:
    """Runs matching `query` (see the module doc), best first; UsageError for an empty query."""
    parsed = parse_query(query)
    params = {"limit": limit, "offset": offset, **_filter_params(where)}
    catch_up(engine)  # SQLite indexes runs in batches: the ones not yet indexed are, now
    with reading(engine) as conn:
        if engine.dialect.name == "sqlite":
            return _sqlite_search(conn, where, params | {"q": fts5_match(parsed)})
        rows = conn.execute(_typed(_postgres_sql(where), where), params | {"q": pg_tsquery(parsed)}).all()
    return [_hit(row) for row in rows]


def _typed(sql: str, where: RunFilter) -> Any:
    stmt = text(sql).columns(created_at=UtcDateTime())
    times = [bindparam(name, type_=UtcDateTime()) for name in ("since", "until") if getattr(where, name)]
    return stmt.bindparams(*times) if times else stmt


def _sqlite_search(conn: Connection, where: RunFilter, params: dict[str, Any]) -> list[SearchHit]:
    # Two statements: SQLite computes snippet() only for the rows a LIMIT keeps when the ranked
    # query stands alone; inside a subquery it computes it for every match (seconds at 100,000 runs).
    # bm25 weights: a hit in the file name counts most, then the outputs, then the error.
    filters = _filters(where, "r")
    join = " JOIN runs r ON r.id = runs_fts.rowid" if filters else ""
    ranked = conn.execute(
        _typed(
            f"""
        SELECT runs_fts.rowid, bm25(runs_fts, 4.0, 2.0, 1.0) AS rank,
               snippet(runs_fts, -1, '{HIT_OPEN}', '{HIT_CLOSE}', '…', 16)
        FROM runs_fts{join} WHERE runs_fts MATCH :q{filters}
        ORDER BY rank, runs_fts.rowid DESC LIMIT :limit OFFSET :offset""",
            where,
        ),
        params,
    ).all()
    if not ranked:
        return []
    found = conn.execute(
        select(runs.c.id, runs.c.workflow, runs.c.status, runs.c.input_path, runs.c.created_at).where(
            runs.c.id.in_([row[0] for row in ranked])
        )
    )
    by_id = {row[0]: row for row in found}
    return [_hit((*by_id[run_id], rank, snippet)) for run_id, rank, snippet in ranked if run_id in by_id]


def _filters(where: RunFilter, alias: str) -> str:
    clauses = []
    if where.workflow is not None:
        clauses.append(f"{alias}.workflow = :workflow")
    if where.status is not None:
        clauses.append(f"{alias}.status = :status")
    if where.since is not None:
        clauses.append(f"{alias}.created_at >= :since")
    if where.until is not None:
        clauses.append(f"{alias}.created_at < :until")
    return "".join(f" AND {clause}" for clause in clauses)


def _filter_params(where: RunFilter) -> dict[str, Any]:
    params = {"workflow": where.workflow, "status": where.status and where.status.value}
    params |= {"since": where.since, "until": where.until}
    return {name: value for name, value in params.items() if value is not None}


_PG_TEXT = "coalesce(search_name, '') || ' ' || coalesce(search_text, '') || ' ' || coalesce(error, '')"
# Exactly the expression of migration 0003's GIN index, or the index is not used.
_PG_DOCUMENT = f"to_tsvector('simple', regexp_replace({_PG_TEXT}, '[[:punct:]]+', ' ', 'g'))"


def _postgres_sql(where: RunFilter) -> str:
    # Ranked and cut first, so ts_headline (slow) runs only on the rows shown.
    return f"""
        WITH q AS (SELECT to_tsquery('simple', :q) AS query),
        best AS (
            SELECT r.id, ts_rank_cd({_PG_DOCUMENT}, q.query) AS rank
            FROM runs r, q WHERE {_PG_DOCUMENT} @@ q.query{_filters(where, "r")}
            ORDER BY rank DESC, r.id DESC LIMIT :limit OFFSET :offset
        )
        SELECT r.id, r.workflow, r.status, r.input_path, r.created_at, -best.rank AS rank,
               ts_headline('simple', {_PG_TEXT}, q.query,
                           'StartSel={HIT_OPEN}, StopSel={HIT_CLOSE}, MaxWords=24, MinWords=10') AS snippet
        FROM best JOIN runs r ON r.id = best.id, q
        ORDER BY best.rank DESC, r.id DESC"""


def _hit(row: Sequence[Any]) -> SearchHit:
    run_id, workflow, status, input_path, created_at, rank, snippet = row
    return SearchHit(
        run_id=run_id, workflow=workflow, status=RunStatus(status), input_path=input_path,
        created_at=created_at, rank=float(rank), snippet=" ".join((snippet or "").split()),
    )  # fmt: skip
