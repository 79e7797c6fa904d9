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
import pyarrow.csv as pa_csv
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

    def lines(self, raw: bytes, starts: np.ndarray) -> np.ndarray:
        """`line` of every line of `raw` (beginning at `starts`, closed by `len(raw)`).
        Where a line has no backslash and paired quotes, its strings lie between
        consecutive quotes: those of all such lines are matched in Arrow at once. The
        other lines, and text that is not UTF-8, go through `line`."""
        if not raw.isascii():
            try:
                raw.decode()
            except UnicodeDecodeError:  # the lines `starts` cut (not `str.splitlines`'s)
                return np.array(
                    [
                        self.line(raw[a:b].decode(errors="surrogateescape"))
                        for a, b in zip(starts[:-1], starts[1:], strict=True)
                    ],
                    dtype=bool,
                )
        data = np.frombuffer(raw, np.uint8)
        quotes = np.flatnonzero(data == ord('"'))
        per_line = np.diff(np.searchsorted(quotes, starts))
        irregular = per_line % 2 == 1
        if b"\\" in raw:
            irregular[_line_of(np.flatnonzero(data == ord("\\")), starts)] = True
        quotes = quotes[~np.repeat(irregular, per_line)]
        doomed = np.zeros(len(starts) - 1, dtype=bool)
        if len(quotes):
            doomed[_line_of(quotes[0::2][self._strings(raw, quotes)], starts)] = True
        for i in np.flatnonzero(irregular):
            doomed[i] = self.line(raw[starts[i] : starts[i + 1]].decode())
        return doomed

    def _strings(self, raw: bytes, quotes: np.ndarray) -> np.ndarray:
        """Which of the strings between quotes 0 and 1, 2 and 3, ... of `raw` is a token."""
        offsets = np.r_[0, quotes].astype(np.int64)  # Arrow's kernels want a first 0
        offsets[1::2] += 1  # odd elements are the strings, even ones what lies between
        strings = pa.LargeStringArray.from_buffers(
            len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(raw)
        )
        strings = pc.ascii_lower(strings) if raw.isascii() else pc.utf8_lower(strings)
        values = pa.array(sorted(self.values), pa.large_string())
        found = pc.is_in(strings, value_set=values).to_numpy(False)[1::2]
        data = np.frombuffer(raw, np.uint8)
        begin, end = offsets[1::2], offsets[2::2]  # an empty string's ends are its quotes
        for k in np.flatnonzero(_untrimmed(data[begin]) | _untrimmed(data[end - 1])):
            found[k] = self.field(raw[begin[k] : end[k]].decode())  # few: one by one
        return found

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
    raw = path.read_bytes()
    starts = _line_starts(raw)
    return _drop_lines(path, raw, starts, tokens.lines(raw, starts))


def _csv(path: Path, tokens: Tokens, *, delimiter: str) -> Scrubbed:
    """Rows go whole: where every row is one line, the rows are matched in Arrow and the
    doomed lines cut out of the bytes; otherwise (a value spanning lines, ragged rows) the
    file is read and written again row by row."""
    raw = path.read_bytes()
    starts = _line_starts(raw)
    try:
        table = pa_csv.read_csv(
            io.BytesIO(raw),
            read_options=pa_csv.ReadOptions(skip_rows=1, autogenerate_column_names=True),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(_column_names(raw, delimiter), pa.string())
            ),
        )
    except (pa.ArrowException, csv.Error):
        table = None
    if table is None or table.num_rows != len(starts) - 2:
        return _csv_rows(path, tokens, delimiter=delimiter)
    doomed = np.r_[False, _rows_with(table, tokens)]
    return _drop_lines(path, raw, starts, doomed)


def _csv_rows(path: Path, tokens: Tokens, *, delimiter: str) -> Scrubbed:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    kept = rows[:1] + [row for row in rows[1:] if not any(tokens.field(v) for v in row)]
    if len(kept) < len(rows):
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(kept)
        _replace(path, out.getvalue().encode())
    return Scrubbed(removed=len(rows) - len(kept))


def _column_names(raw: bytes, delimiter: str) -> list[str]:
    header = next(
        csv.reader(
            [raw[: raw.find(b"\n") + 1 or len(raw)].decode(errors="replace")], delimiter=delimiter
        ),
        [],
    )
    return [f"f{i}" for i in range(len(header))]


def _line_starts(raw: bytes) -> np.ndarray:
    """Where each line of `raw` begins, then `len(raw)`."""
    ends = np.flatnonzero(np.frombuffer(raw, np.uint8) == ord("\n")) + 1
    return np.r_[0, ends[ends < len(raw)], len(raw)].astype(np.int64)


def _line_of(positions: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.searchsorted(starts, positions, side="right") - 1


def _untrimmed(first_or_last: np.ndarray) -> np.ndarray:
    """Bytes that may be whitespace `str.strip` removes (ASCII ones, or part of a
    multi-byte character)."""
    return (first_or_last <= ord(" ")) | (first_or_last >= 0x80)


def _drop_lines(path: Path, raw: bytes, starts: np.ndarray, doomed: np.ndarray) -> Scrubbed:
    """Rewrite `path` without the `doomed` lines, every other byte as it was."""
    if doomed.any():
        view, kept = memoryview(raw), np.flatnonzero(~doomed)
        runs = np.split(kept, np.flatnonzero(np.diff(kept) > 1) + 1) if len(kept) else []
        _replace(path, b"".join(view[starts[r[0]] : starts[r[-1] + 1]] for r in runs))
    return Scrubbed(removed=int(doomed.sum()))


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
    doomed = _rows_with(table, tokens)
    if doomed.any():
        metadata = pq.read_metadata(path)
        compression = (
            metadata.row_group(0).column(0).compression if metadata.num_row_groups else "zstd"
        )
        sink = io.BytesIO()
        pq.write_table(table.filter(pa.array(~doomed)), sink, compression=compression.lower())
        _replace(path, sink.getvalue())
    return Scrubbed(removed=int(doomed.sum()))


def _rows_with(table: pa.Table, tokens: Tokens) -> np.ndarray:
    """Which rows of `table` have a string field equal to a token."""
    values = pa.array(sorted(tokens.values), pa.string())
    doomed = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            normal = pc.utf8_lower(pc.utf8_trim_whitespace(column))
            doomed |= pc.fill_null(pc.is_in(normal, value_set=values), False).to_numpy()
    return doomed
