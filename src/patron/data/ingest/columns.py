"""Which input column feeds which contract column: the ``--map`` option and matching by name.

Names are compared in Python only; the result names staged columns by position
(:class:`~patron.data.ingest.checks.SourceColumn`), so no input name reaches SQL as an identifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from patron.data.ingest.checks import SourceColumn
from patron.data.ingest.readers import Staged
from patron.data.schema import TableContract
from patron.errors import InputError


def parse_mapping(mapping: Mapping[str, str] | Sequence[str] | None, contract: TableContract) -> dict[str, str]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        parsed: dict[str, str] = {}
        for item in mapping:
            # The source is everything after the first "=", kept as typed: a column name may
            # hold "=", spaces, quotes (any name is legal); matching also tries it stripped.
            target, sep, source = item.partition("=")
            if not sep or not target.strip() or not source:
                raise InputError(f"mapping expects target=source, e.g. occurred_at=date; got {item!r}", parameters=("mapping",))
            parsed[target.strip()] = source
        mapping = parsed
    known = {c.name for c in contract.columns}
    for target in mapping:
        if target not in known:
            raise InputError(f"mapping {target}=...: {contract.name} has no column {target!r} (columns: {', '.join(sorted(known))})",
                             parameters=("mapping",))
    return dict(mapping)


def resolve_sources(contract: TableContract, staged: Staged, types: Sequence[str], mapping: dict[str, str], label: str) -> tuple[dict[str, SourceColumn], list[SourceColumn]]:
    """The staged column feeding each contract column and, when the contract keeps them, the
    other columns. ``types[i]`` is the DuckDB type of staged column ``i``.

    A contract column (or the input name mapped to it) is matched exactly, then ignoring case,
    then ignoring surrounding spaces. When that finds more than one input column (a repeated
    header name, or names that differ only in case), the input is refused: ingest cannot tell
    which column holds the values. Repeated names among the columns kept as ``attributes`` are
    refused too; repeated names that nothing reads are ignored."""
    exact: dict[str, list[int]] = {}
    folded: dict[str, list[int]] = {}
    for i, name in enumerate(staged.columns):
        exact.setdefault(name, []).append(i)
        folded.setdefault(name.lower(), []).append(i)

    def find(wanted: str) -> list[int]:
        for w in dict.fromkeys((wanted, wanted.strip())):
            hits = exact.get(w) or folded.get(w.lower())
            if hits:
                return hits
        return []

    def ambiguous(hits: list[int], what: str) -> InputError:
        where = ", ".join(f"column {i + 1} {staged.columns[i]!r}" for i in hits)
        return InputError(f"{label}: {len(hits)} columns match {what} ({where}); ingest cannot tell which one to read: rename all but one")

    idents = staged.idents
    sources: dict[str, SourceColumn] = {}
    for col in contract.columns:
        wanted = mapping.get(col.name, col.name)
        hits = find(wanted)
        if not hits and col.name in mapping:
            raise InputError(f"{label}: column {wanted!r} (mapped to {col.name}) not found; columns are: {', '.join(staged.columns)}")
        if len(hits) > 1:
            raise ambiguous(hits, f"{col.name}" if wanted == col.name else f"{wanted!r} (mapped to {col.name})")
        if hits:
            found = hits[0]
            sources[col.name] = SourceColumn(idents[found], types[found], staged.columns[found])
    missing = [c for c in contract.required if c not in sources]
    if missing:
        hint = "mapping " + ", ".join(f"{m}=COLUMN" for m in missing)
        raise InputError(f"{label}: missing required column {', '.join(missing)} for {contract.name} (columns found: {', '.join(staged.columns) or 'none'}); rename it or use {hint}",
                         parameters=("mapping",))
    if not contract.keep_extra_as_attributes:
        return sources, []
    used = {s.name for s in sources.values()}
    extras = [SourceColumn(idents[i], types[i], name) for i, name in enumerate(staged.columns) if idents[i] not in used]
    for e in extras:
        hits = exact[e.label]
        if len(hits) > 1:
            raise ambiguous(hits, f"the attribute {e.label!r}")
    return sources, extras
