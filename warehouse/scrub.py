"""Erasing people from files: source files, exports, feature Parquet, logs, artifacts.

`scrub_file` rewrites one file without the rows that name a person, in its own format: a
CSV row or a Parquet row with a field equal to one of the `Tokens.values` (customer ids,
record keys, identifiers, hashed identifiers; compared trimmed and lower-cased), a line
of JSON lines (a source file, a collector log segment) with such a string, an element of
a JSON document's lists; any other text file loses the lines holding one of the
`Tokens.texts` (e-mails, phones, names as written). A file is replaced atomically (a
temporary file, then `os.replace`), and only when something was removed. A file of
another kind (a pickled model, an image) cannot be rewritten: `scrub_file` reports
whether it still holds one of the texts, so the caller never calls the erasure done.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["Scrubbed", "Tokens", "scrub_file"]

_TEXT_SUFFIXES = {".html", ".htm", ".txt", ".md", ".yaml", ".yml", ".svg", ".xml"}
_JSON_LINES = {".jsonl", ".ndjson", ".log"}
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Tokens:
    """What marks a person's data: exact field `values` (lower-cased) and `texts` that may
    appear inside free text."""

    values: frozenset[str]
    texts: tuple[str, ...]

    @classmethod
    def of(cls, *, values: Iterable[str], texts: Iterable[str]) -> Tokens:
        kept = {v.strip().lower() for v in values if v and v.strip()}
        return cls(frozenset(kept), tuple(sorted({t for t in texts if t and len(t) >= 5})))

    def field(self, value: object) -> bool:
        return isinstance(value, str) and value.strip().lower() in self.values

    def document(self, value: object) -> bool:
        """Whether a JSON value holds a token anywhere."""
        if isinstance(value, dict):
            return any(self.document(v) for v in value.values())
        if isinstance(value, list):
            return any(self.document(v) for v in value)
        return self.field(value if isinstance(value, str) else str(value))

    def line(self, text: str) -> bool:
        """Whether a line of JSON holds a token as one of its strings."""
        return any(self.field(_unescape(m)) for m in _QUOTED.findall(text))

    def lines(self, lines: list[str]) -> np.ndarray:
        """`line` of every line at once: where a line has no backslash, its JSON strings
        are exactly the odd pieces between its quotes, matched in Arrow; the rest (escapes,
        text Arrow cannot encode) go through `line`."""
        try:
            array = pa.array(lines, pa.large_string())
        except (pa.ArrowException, UnicodeEncodeError):
            return np.array([self.line(text) for text in lines], dtype=bool)
        pieces = pc.split_pattern(array, '"')
        parents = pc.list_parent_indices(pieces).to_numpy()
        offsets = pieces.offsets.to_numpy()
        quoted = (np.arange(len(parents)) - offsets[parents]) % 2 == 1
        values = pa.array(sorted(self.values), pa.large_string())
        flat = pc.list_flatten(pieces)
        if pc.all(pc.string_is_ascii(array)).as_py():  # JSON's strings hold no raw controls
            normal = pc.ascii_lower(pc.ascii_trim_whitespace(flat))
        else:
            normal = pc.utf8_lower(pc.utf8_trim_whitespace(flat))
        found = pc.fill_null(pc.is_in(normal, value_set=values), False).to_numpy(False)
        doomed = np.zeros(len(lines), dtype=bool)
        doomed[parents[found & quoted]] = True
        for i in np.flatnonzero(pc.match_substring(array, "\\").to_numpy(False)):
            doomed[i] = self.line(lines[i])
        return doomed

    def in_bytes(self, data: bytes) -> bool:
        return any(t.encode() in data for t in self.texts)


@dataclass(frozen=True)
class Scrubbed:
    """What `scrub_file` did: rows (lines, elements) removed, and whether the file is of a
    kind it cannot rewrite yet still holds one of the texts."""

    removed: int = 0
    residue: bool = False


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    try:
        return json.loads(f'"{text}"')
    except ValueError:
        return text


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.scrub")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def scrub_file(path: Path, *, tokens: Tokens) -> Scrubbed:
    """Remove from the file at `path` whatever names the person of `tokens`."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet(path, tokens)
    if suffix in (".csv", ".tsv"):
        return _csv(path, tokens, delimiter="\t" if suffix == ".tsv" else ",")
    if suffix in _JSON_LINES:
        return _json_lines(path, tokens)
    if suffix == ".json":
        return _json(path, tokens)
    if suffix in _TEXT_SUFFIXES:
        return _lines(path, lambda line: any(t in line for t in tokens.texts))
    return Scrubbed(residue=tokens.in_bytes(path.read_bytes()))


def _lines(path: Path, doomed) -> Scrubbed:  # noqa: ANN001 (a predicate on a line)
    text = path.read_text(errors="surrogateescape")
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not doomed(line)]
    if len(kept) < len(lines):
        _replace(path, "".join(kept).encode(errors="surrogateescape"))
    return Scrubbed(removed=len(lines) - len(kept))


def _json_lines(path: Path, tokens: Tokens) -> Scrubbed:
    lines = path.read_text(errors="surrogateescape").splitlines(keepends=True)
    doomed = tokens.lines(lines)
    if doomed.any():
        kept = [line for line, gone in zip(lines, doomed, strict=True) if not gone]
        _replace(path, "".join(kept).encode(errors="surrogateescape"))
    return Scrubbed(removed=int(doomed.sum()))


def _csv(path: Path, tokens: Tokens, *, delimiter: str) -> Scrubbed:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    kept = rows[:1] + [row for row in rows[1:] if not any(tokens.field(v) for v in row)]
    if len(kept) < len(rows):
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(kept)
        _replace(path, out.getvalue().encode())
    return Scrubbed(removed=len(rows) - len(kept))


def _json(path: Path, tokens: Tokens) -> Scrubbed:
    try:
        document = json.loads(path.read_text())
    except ValueError:
        return _lines(path, lambda line: any(t in line for t in tokens.texts))
    removed = 0

    def prune(value: object) -> object:
        nonlocal removed
        if isinstance(value, list):
            kept = [v for v in value if not tokens.document(v)]
            removed += len(value) - len(kept)
            return [prune(v) for v in kept]
        if isinstance(value, dict):
            return {k: prune(v) for k, v in value.items()}
        return value

    pruned = prune(document)
    if removed:
        _replace(path, json.dumps(pruned).encode())
    return Scrubbed(removed=removed)


def _parquet(path: Path, tokens: Tokens) -> Scrubbed:
    table = pq.read_table(path)
    values = pa.array(sorted(tokens.values), pa.string())
    doomed = pa.array([False] * table.num_rows)
    for name in table.column_names:
        column = table[name]
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            normal = pc.utf8_lower(pc.utf8_trim_whitespace(column))
            doomed = pc.or_(doomed, pc.fill_null(pc.is_in(normal, value_set=values), False))
    removed = pc.sum(doomed).as_py() or 0
    if removed:
        metadata = pq.read_metadata(path)
        compression = (
            metadata.row_group(0).column(0).compression if metadata.num_row_groups else "zstd"
        )
        sink = io.BytesIO()
        pq.write_table(table.filter(pc.invert(doomed)), sink, compression=compression.lower())
        _replace(path, sink.getvalue())
    return Scrubbed(removed=removed)
