"""Spans from files: OTLP/JSON documents, the Collector file exporter's JSON lines, the SDK mirror.

A rebuild must work from what an operator has on disk, so every format is detected per record and
a bad line is counted as malformed, never fatal. Files are streamed line by line in sorted path
order, so results do not depend on the file system's listing order.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from harness.model import DecodeStats, Span, SpanItem
from harness.spans.envelopes import DECODE_VERSION, note_malformed
from harness.spans.errors import InvalidSpanPayload
from harness.spans.mirror import decode_mirror_line
from harness.spans.otlp import MiB, decode_otlp_json
from harness.spans.source import DecodedUnit, SpanQuery, SpanUnit, decode_span, items_of_units

SPAN_FILE_SUFFIXES = (".json", ".jsonl", ".ndjson")
SIDE_FILES = frozenset({"posts.jsonl", "patches.jsonl"})
"""Names a fixture folder uses for what was POSTed / PATCHed beside its spans: never read as spans
when a folder is scanned (an explicitly named file is always read)."""
DEFAULT_MAX_DOCUMENT_BYTES = 256 * MiB

PathLike = str | os.PathLike[str]


def span_files(paths: Iterable[PathLike]) -> list[Path]:
    """The span files under `paths` (files as given, folders searched recursively), sorted, unique."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.update(
                p
                for p in path.rglob("*")
                if p.suffix in SPAN_FILE_SUFFIXES and p.name not in SIDE_FILES and p.is_file()
            )
        elif path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"no such span file or folder: {path}")
    return sorted(found)


def parse_line(line: bytes) -> Any:
    """One line of a span file parsed exactly as `json.loads` parses it, in about half the time.

    orjson parses an OTLP/JSON line twice as fast, but it differs from `json.loads` in what it refuses
    (NaN, lone surrogates: `json.loads` then decides, as before) and in integers beyond 64 bits, which
    it turns into floats. An OTLP/JSON document carries user data only in string values (the item
    envelopes are JSON text inside `dreadnode.objects`), and its integer fields refuse values beyond
    64 bits whichever parser read them, so any other record (an SDK mirror span, whose attributes are
    plain JSON values) is parsed again by `json.loads`.
    """
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    if type(record) is dict and ("resourceSpans" in record or "resource_spans" in record):
        return record
    return json.loads(line)


def spans_of_record(record: Any) -> list[Span]:
    """One parsed JSON record: an OTLP/JSON document (several spans) or one SDK mirror span."""
    if isinstance(record, dict):
        if "resourceSpans" in record or "resource_spans" in record:
            return decode_otlp_json(record)
        if ("trace_id" in record and "span_id" in record) or isinstance(record.get("context"), dict):
            return [decode_mirror_line(record)]
    raise InvalidSpanPayload("neither an OTLP/JSON document nor an SDK mirror span")


def _whole_document(fh: BinaryIO, path: Path, max_bytes: int) -> Any | None:
    """A pretty-printed file holds one JSON document; None when it is not (then it is read as lines)."""
    if path.stat().st_size > max_bytes:
        return None
    resume = fh.tell()
    fh.seek(0)
    try:
        return json.load(fh)
    except (ValueError, RecursionError):
        return None
    finally:
        fh.seek(resume)


def _raw_records(fh: BinaryIO, path: Path, max_document_bytes: int) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, line, its record parsed or None) for each non-blank record of the file.

    Only the first line is parsed here, to tell JSON lines from one pretty-printed document; the records
    of such a document come parsed, as line 1 with no bytes of their own.
    """
    first = True
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        if not first:
            yield lineno, line, None
            continue
        first = False
        try:
            record: Any = parse_line(line)
        except (ValueError, RecursionError):
            document = _whole_document(fh, path, max_document_bytes)
            if document is not None:
                for record in document if isinstance(document, list) else [document]:
                    yield 1, b"", record
                return
            yield lineno, line, None
            continue
        yield lineno, line, record


def _parsed(line: bytes) -> Any:
    """The record of a line, or the InvalidSpanPayload that says why it has none."""
    try:
        return parse_line(line)
    except (ValueError, RecursionError) as exc:
        return InvalidSpanPayload(f"not valid JSON ({exc.__class__.__name__})")


def _records(fh: BinaryIO, path: Path, max_document_bytes: int) -> Iterator[tuple[int, Any]]:
    """(line number, parsed record or the parse error) for each non-blank record of the file."""
    for lineno, line, record in _raw_records(fh, path, max_document_bytes):
        yield lineno, _parsed(line) if record is None else record


def _file_spans(path: Path, stats: DecodeStats, max_document_bytes: int) -> Iterator[Span]:
    with path.open("rb") as fh:
        for lineno, record in _records(fh, path, max_document_bytes):
            try:
                if isinstance(record, InvalidSpanPayload):
                    raise record
                spans = spans_of_record(record)
            except InvalidSpanPayload as exc:
                note_malformed(stats, f"{path}:{lineno}: {exc}")
                continue
            yield from spans


def iter_spans(
    paths: Iterable[PathLike],
    stats: DecodeStats | None = None,
    *,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> Iterator[Span]:
    """Every span in the files under `paths`; malformed lines are counted in `stats` and skipped."""
    stats = stats if stats is not None else DecodeStats()
    for path in span_files(paths):
        yield from _file_spans(path, stats, max_document_bytes)


class FileSpanSource:
    """A `SpanSource` over span files and folders (what `harness spans load` and file rebuilds read)."""

    def __init__(self, paths: Iterable[PathLike], *, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES):
        self.paths = tuple(Path(p) for p in paths)
        self.max_document_bytes = max_document_bytes

    def item_spans(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanItem]:
        """Items of the spans `query` selects; `stats.spans` counts the selected spans only."""
        yield from items_of_units(self.item_units(query, stats), query, stats)

    def item_units(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanUnit]:
        """Every record (line) of the files as a unit keyed by a digest of its bytes; `query` is applied
        by the caller (`harness.spans.source.items_of_units`), so decoding a line never depends on it."""
        for path in span_files(self.paths):
            yield from _file_units(path, self.max_document_bytes)

    def input_size(self, query: SpanQuery) -> int:
        """Bytes of the span files: a unit's size is the bytes of its line."""
        return sum(path.stat().st_size for path in span_files(self.paths))

    def __repr__(self) -> str:
        return f"FileSpanSource({[str(p) for p in self.paths]!r})"


_LINE_KEY_PERSON = f"files/{DECODE_VERSION}".encode()


def line_key(line: bytes) -> bytes:
    """The memo key of one line of a span file: its bytes decide what it decodes to."""
    return hashlib.blake2b(line, digest_size=16, person=_LINE_KEY_PERSON).digest()


def _file_units(path: Path, max_document_bytes: int) -> Iterator[SpanUnit]:
    """The records of `_raw_records` as units: a line keyed by its bytes; a record of a whole
    pretty-printed document never memoized (the first one carries the file's size, for progress)."""
    with path.open("rb") as fh:
        document_size = path.stat().st_size
        for lineno, line, record in _raw_records(fh, path, max_document_bytes):
            if line:
                yield SpanUnit(line_key(line), functools.partial(_decode_line, path, lineno, line, record), len(line))
            else:
                yield SpanUnit(None, functools.partial(_decode_line, path, lineno, line, record), document_size)
                document_size = 0


def _decode_line(path: Path, lineno: int, line: bytes, record: Any) -> DecodedUnit:
    """One record as `_records` and `_file_spans` read it (the same reasons, the same counts); `record`
    None means parse `line` (a record of a whole-file document is passed parsed, at line 1)."""
    unit = DecodedUnit()
    if record is None:
        record = _parsed(line)
    try:
        if isinstance(record, InvalidSpanPayload):
            raise record
        spans = spans_of_record(record)
    except InvalidSpanPayload as exc:
        note_malformed(unit.stats, f"{path}:{lineno}: {exc}")
        unit.memoizable = False
        return unit
    unit.spans = [decode_span(span) for span in spans]
    return unit
