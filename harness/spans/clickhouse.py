"""ClickHouse as the span store: the platform's `otel_traces` table, on a server or in-process (chDB).

One class serves both backends with the same SQL; values are always bound server-side
(`{name:Type}`), identifiers validated and quoted. Failures surface only as `SpanStoreUnavailable`
(HTTP 502) or `SpanStoreTimeout` (504), with messages that never carry credentials.

chDB hosts one engine (one data path) per process. This module pins the first chDB path a process
uses and shares one client on it between all stores; a store on another path is refused with a
`SpanStoreError` instead of chDB's late, cryptic failure. Streaming reads get a handle of their own
(chDB serializes calls per handle and a stream holds its handle until consumed), so a slow reader
never blocks, or is broken by, another caller.

Timeouts: every query carries `max_execution_time`, which both backends enforce inside the engine
(checked as blocks are processed, so a query overruns by at most a block's work); a server
connection also has a read timeout (whole seconds, the driver's unit) as a backstop. chDB has no
such backstop: a call blocked outside query execution (say, on a table lock) is not interrupted.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from harness.model import DecodeStats, Span, SpanItem
from harness.spans.clickhouse_schema import (
    DEFAULT_TABLE,
    INSERT_COLUMNS,
    SELECT_COLUMNS,
    TYPES_KEY,
    attributes_from_row,
    create_database_sql,
    create_table_sql,
    qualified,
    quote_identifier,
    row_to_span,
    span_to_row,
)
from harness.spans.envelopes import (
    DECODE_VERSION,
    ITEM_OUTPUT,
    OBJECTS_ATTR,
    OUTPUTS_ATTR,
    PROJECT_ATTR,
    RUN_ATTR,
    SESSION_ATTR,
)
from harness.spans.errors import SpanStoreError, SpanStoreTimeout, SpanStoreUnavailable
from harness.spans.source import (
    ORG_RESOURCE_ATTR,
    DecodedUnit,
    SpanQuery,
    SpanUnit,
    decode_span,
    items_of_units,
)

DEFAULT_TIMEOUT_S = 30.0
CHDB_FILE_NAME = "spans.chdb"

# ClickHouse error codes: TIMEOUT_EXCEEDED, TOO_SLOW, SOCKET_TIMEOUT; UNKNOWN_TABLE, UNKNOWN_DATABASE.
_TIMEOUT_CODES = frozenset({159, 160, 209})
_MISSING_CODES = frozenset({60, 81})
_REASON_LIMIT = 300

_PROJECT = f"SpanAttributes['{PROJECT_ATTR}']"
_SESSION = f"SpanAttributes['{SESSION_ATTR}']"
_RUN = f"SpanAttributes['{RUN_ATTR}']"
_ORG = f"ResourceAttributes['{ORG_RESOURCE_ATTR}']"
_UUID_LIKE_RE2 = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_ITEM_CANDIDATE = (
    f"(position(SpanAttributes['{OUTPUTS_ATTR}'], '\"{ITEM_OUTPUT}\"') > 0"
    f" OR position(SpanAttributes['{OUTPUTS_ATTR}'], '\\\\u') > 0)"
)
"""The decoder's own fast-path test in SQL: outputs naming "item", or with a \\u escape that might."""


def _only(column: str, keys: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{key}'" for key in keys)  # constants of this module: nothing to escape
    return f"mapFilter((k, v) -> has([{listed}], k), {column})"


_ITEM_SPAN_COLUMNS = (
    "toUnixTimestamp64Nano(Timestamp), Duration, TraceId, SpanId, "
    + _only("SpanAttributes", (OUTPUTS_ATTR, OBJECTS_ATTR, PROJECT_ATTR, SESSION_ATTR, RUN_ATTR, TYPES_KEY))
    + ", "
    + _only("ResourceAttributes", (ORG_RESOURCE_ATTR, TYPES_KEY))
)
"""What a rebuild reads of an item span: its order, and only the attributes `items_of_span` and
`SpanQuery.matches` look at (the big others, tool arguments and schemas, stay in the engine)."""
_NO_ITEM_SPAN = ("'', toInt64(0), toUInt64(0), '', '', CAST(map(), 'Map(LowCardinality(String), String)'),"
                 " CAST(map(), 'Map(LowCardinality(String), String)')")
"""Placeholders of the `_ITEM_SPAN_COLUMNS` (and the digest before them) in the row that carries a count."""


_UNIT_KEY_PREFIX = f"clickhouse/{DECODE_VERSION}:".encode()


def _decode_item_row(row: Any) -> DecodedUnit:
    """A unit of `item_units`: its digest, then the `_ITEM_SPAN_COLUMNS`."""
    return DecodedUnit(spans=[decode_span(_item_span(row[1:]))])


def _item_span(row: Any) -> Span:
    """The parts of a span that decide its items, from a row selected with `_ITEM_SPAN_COLUMNS`.

    A row of another table layout (a column of another type) is the store's fault, not the caller's: 502.
    """
    try:
        return _item_span_fields(row)
    except (ValueError, TypeError, KeyError) as exc:
        raise SpanStoreUnavailable(f"the span table has an unexpected layout ({type(exc).__name__}: {exc})") from exc


def _item_span_fields(row: Any) -> Span:
    start, duration, trace_id, span_id, attributes, resource = row
    return Span(
        trace_id=str(trace_id),
        span_id=str(span_id),
        parent_span_id=None,
        name="",
        kind="UNSPECIFIED",
        start_time_unix_nano=int(start),
        end_time_unix_nano=int(start) + int(duration),
        attributes=attributes_from_row(attributes),
        resource_attributes=attributes_from_row(resource),
    )


def _canonical(column: str) -> str:
    """`canonical_id` in SQL: UUID-shaped values lowercased, anything else kept as is."""
    return f"if(match({column}, '{_UUID_LIKE_RE2}'), lower({column}), {column})"


# --------------------------------------------------------------------------- DSN


@dataclass(frozen=True)
class StoreLocation:
    """Where a store lives, parsed from its DSN. `display` is safe to log: it has no credentials."""

    backend: str
    """`http` (a ClickHouse server, http or https) or `chdb` (the in-process engine)."""
    database: str
    table: str
    path: str = ""
    """chDB data directory (absolute, normalized) or `:memory:`."""
    host: str = ""
    port: int = 0
    secure: bool = False
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        if self.backend == "chdb":
            return f"chdb://{self.path} ({self.database}.{self.table})"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.host}:{self.port} ({self.database}.{self.table})"


def parse_dsn(dsn: str, table: str | None = None) -> StoreLocation:
    """Read `http[s]://user:pass@host:port/db`, `chdb:///abs/path[?database=db]` or `chdb://memory/db`.

    Both take `?table=name`; an explicit `table` argument wins. Database defaults to `default`.
    """
    parsed = urlparse(dsn)
    params = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
    unknown = set(params) - {"database", "table"}
    if unknown:
        raise ValueError(f"unknown span store DSN parameter(s): {', '.join(sorted(unknown))}")
    chosen_table = table or params.get("table") or DEFAULT_TABLE
    if parsed.scheme == "chdb":
        if parsed.netloc in ("memory", ":memory:"):
            path = ":memory:"
            database = params.get("database") or unquote(parsed.path.strip("/")) or "default"
        elif parsed.netloc:
            raise ValueError("a chDB DSN is chdb:///absolute/path or chdb://memory/<database>")
        else:
            raw = unquote(parsed.path)
            if not raw.startswith("/"):
                raise ValueError("a chDB DSN needs an absolute path: chdb:///abs/path")
            path = str(Path(raw).resolve())
            database = params.get("database") or "default"
        location = StoreLocation("chdb", database, chosen_table, path=path)
    elif parsed.scheme in ("http", "https"):
        secure = parsed.scheme == "https"
        location = StoreLocation(
            "http",
            params.get("database") or unquote(parsed.path.strip("/")) or "default",
            chosen_table,
            host=parsed.hostname or "localhost",
            port=parsed.port or (8443 if secure else 8123),
            secure=secure,
            username=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
        )
    else:
        raise ValueError(
            f"unsupported span store DSN scheme {parsed.scheme!r}: use chdb:///path or http(s)://host:8123/db"
            " (the driver speaks ClickHouse's HTTP interface, not the native protocol)"
        )
    quote_identifier(location.database)
    quote_identifier(location.table)
    return location


def dsn_for_data_dir(data_dir: Path) -> str:
    """The default store of `harness serve`: chDB in `<data_dir>/spans.chdb`, beside the items database."""
    return "chdb://" + quote(str((Path(data_dir) / CHDB_FILE_NAME).resolve()))


# --------------------------------------------------------------------------- the chDB engine


_ENGINE_LOCK = threading.Lock()
_ENGINE: tuple[str, Any] | None = None
"""(path, shared client) of the process's one chDB engine, once opened."""


def _open_chdb_handle(path: str) -> Any:
    try:
        return clickhouse_connect.get_client(interface="chdb", path=path)
    except ClickHouseError as exc:
        raise SpanStoreError(f"cannot open the chDB engine at {path}: {_reason(exc, '')}") from exc


def chdb_engine_client(path: str) -> Any:
    """The shared client of the process's chDB engine at `path`, opening the engine on first use."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = (path, _open_chdb_handle(path))
        elif _ENGINE[0] != path:
            raise SpanStoreError(
                f"chDB runs one engine per process and this one already uses {_ENGINE[0]}; "
                f"a store at {path} needs its own process (or use the same path with another database)"
            )
        return _ENGINE[1]


_IDLE_HANDLES: dict[str, list[Any]] = {}
"""Stream handles of the engine that finished a stream cleanly, for the next stream to reuse: opening
one costs a few queries (about 10 ms), a noticeable part of a small rebuild."""
_IDLE_LIMIT = 4


def _take_stream_handle(path: str) -> Any:
    with _ENGINE_LOCK:
        idle = _IDLE_HANDLES.get(path)
        if idle:
            return idle.pop()
    return _open_chdb_handle(path)


def _return_stream_handle(path: str, handle: Any) -> None:
    """Keep a handle whose stream ran to its end; a handle a stream was abandoned on is closed instead."""
    with _ENGINE_LOCK:
        idle = _IDLE_HANDLES.setdefault(path, [])
        if len(idle) < _IDLE_LIMIT:
            idle.append(handle)
            return
    handle.close()


def chdb_engine_path() -> str | None:
    """The data path of this process's chDB engine, or None when none was opened here."""
    with _ENGINE_LOCK:
        return _ENGINE[0] if _ENGINE is not None else None


# --------------------------------------------------------------------------- errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_timeout(exc: BaseException) -> bool:
    for link in _chain(exc):
        if getattr(link, "code", None) in _TIMEOUT_CODES:
            return True
        if isinstance(link, TimeoutError) or type(link).__name__ in ("ReadTimeoutError", "ConnectTimeoutError"):
            return True
    return False


def _reason(exc: BaseException, secret: str) -> str:
    """A short, credential-free description: the innermost cause, e.g. `[Errno 111] Connection refused`."""
    root = list(_chain(exc))[-1]
    text = " ".join(str(root).split()) or type(root).__name__
    if secret:
        text = text.replace(secret, "***")
    return text[:_REASON_LIMIT]


# --------------------------------------------------------------------------- the store


class ClickHouseSpanStore:
    """Reads and writes spans in the collector's `otel_traces` layout; a `SpanSource` for rebuilds."""

    def __init__(self, dsn: str, *, table: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.location = parse_dsn(dsn, table)
        self.timeout_s = timeout_s
        self._table = qualified(self.location.database, self.location.table)
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClickHouseSpanStore({self.location.display})"

    def __enter__(self) -> ClickHouseSpanStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close a server connection; the shared chDB client stays open for the process."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self.location.backend == "http":
            client.close()

    # ------------------------------------------------------------------ plumbing

    def _connect(self) -> Any:
        loc = self.location
        if loc.backend == "chdb":
            return chdb_engine_client(loc.path)
        return clickhouse_connect.get_client(
            interface="https" if loc.secure else "http",
            host=loc.host,
            port=loc.port,
            username=loc.username or None,
            password=loc.password,
            # The driver takes whole seconds; the read timeout is a backstop behind max_execution_time.
            connect_timeout=math.ceil(min(self.timeout_s, 10.0)),
            send_receive_timeout=math.ceil(self.timeout_s) + 1,
            autogenerate_session_id=False,
        )

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _settings(self) -> dict[str, Any]:
        # Reading the map element itself (not its subcolumn) lets the idx_dn_* skip indexes match.
        return {"max_execution_time": self.timeout_s, "optimize_functions_to_subcolumns": 0}

    def _error(self, exc: BaseException) -> SpanStoreError:
        """The span-layer error for a driver failure; messages name the store, never its credentials."""
        if isinstance(exc, SpanStoreError):
            return exc
        where = self.location.display
        reason = _reason(exc, self.location.password)
        if _is_timeout(exc):
            return SpanStoreTimeout(f"span store {where} did not answer within {self.timeout_s:g}s ({reason})")
        if any(getattr(link, "code", None) in _MISSING_CODES for link in _chain(exc)):
            return SpanStoreUnavailable(f"span store {where}: the span table does not exist ({reason})")
        return SpanStoreUnavailable(f"span store {where} is unavailable: {reason}")

    def _command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        try:
            self._get_client().command(
                sql, parameters=parameters or {}, settings={"max_execution_time": self.timeout_s}
            )
        except (ClickHouseError, OSError) as exc:
            raise self._error(exc) from exc

    def scalar(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """First value of a query (diagnostics and tests); values go in `parameters`, never into `sql`."""
        try:
            result = self._get_client().query(sql, parameters=parameters or {}, settings=self._settings())
        except (ClickHouseError, OSError) as exc:
            raise self._error(exc) from exc
        rows = result.result_rows
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ schema and writes

    def ensure_schema(self) -> None:
        """Create the database and the `otel_traces` table unless the table exists (idempotent).

        An existing table (a collector's, say) is left exactly as it is, and needs no DDL grant.
        """
        if self.scalar(f"EXISTS TABLE {self._table}"):
            return
        self._command(create_database_sql(self.location.database))
        self._command(create_table_sql(self.location.database, self.location.table))

    def insert_spans(self, spans: Iterable[Span], *, org: str | None = None, batch_size: int = 10_000) -> int:
        """Insert spans in column-oriented batches; `org` is recorded as resource `harness.org`."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        names = [name for name, _ in INSERT_COLUMNS]
        types = [type_name for _, type_name in INSERT_COLUMNS]
        total = 0
        columns: list[list[Any]] = [[] for _ in names]
        for span in spans:
            for column, value in zip(columns, span_to_row(span, org), strict=True):
                column.append(value)
            if len(columns[0]) >= batch_size:
                total += self._insert_batch(columns, names, types)
                columns = [[] for _ in names]
        if columns[0]:
            total += self._insert_batch(columns, names, types)
        return total

    def _insert_batch(self, columns: list[list[Any]], names: list[str], types: list[str]) -> int:
        try:
            self._get_client().insert(
                self.location.table,
                columns,
                column_names=names,
                database=self.location.database,
                column_type_names=types,
                column_oriented=True,
            )
        except (ClickHouseError, OSError) as exc:
            raise self._error(exc) from exc
        return len(columns[0])

    # ------------------------------------------------------------------ reads

    @staticmethod
    def _where(query: SpanQuery) -> tuple[str, dict[str, Any]]:
        """SQL selecting exactly the spans `query.matches` (ids compared as `canonical_id` does).

        Each id filter is a `lower(...)` test, which the `idx_dn_*` skip indexes serve, and, where
        `canonical_id` keeps case (slugs), an exact test on top of it.
        """
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if not query.project_keys:
            return "0", params
        clauses.append(
            f"lower({_PROJECT}) IN {{projects_lower:Array(String)}}"
            f" AND {_canonical(_PROJECT)} IN {{projects:Array(String)}}"
        )
        params["projects"] = sorted(query.project_keys)
        params["projects_lower"] = sorted({k.lower() for k in query.project_keys})
        if query.session_id is not None:
            clauses.append(f"lower({_SESSION}) = {{session_id:String}}")
            params["session_id"] = query.session_id
        if query.run_ids:
            clauses.append(
                f"lower({_RUN}) IN {{runs_lower:Array(String)}} AND {_canonical(_RUN)} IN {{runs:Array(String)}}"
            )
            params["runs"] = sorted(set(query.run_ids))
            params["runs_lower"] = sorted({r.lower() for r in query.run_ids})
        if query.org is not None:
            clauses.append(f"(NOT mapContains(ResourceAttributes, '{ORG_RESOURCE_ATTR}') OR {_ORG} = {{org:String}})")
            params["org"] = query.org
        return " AND ".join(clauses), params

    def query_spans(self, query: SpanQuery, *, items_only: bool = False) -> Iterator[Span]:
        """Stream the spans `query` selects; with `items_only`, only those that may carry an item.

        Rows arrive block by block, so memory stays bounded however many spans match.
        """
        where, params = self._where(query)
        if items_only:
            where = f"({where}) AND {_ITEM_CANDIDATE}"
        sql = f"SELECT {SELECT_COLUMNS} FROM {self._table} WHERE {where}"
        yield from self._stream(sql, params, query)

    def _rows(self, sql: str, params: dict[str, Any]) -> Iterator[Any]:
        """Stream the rows of `sql`, block by block (a chDB stream on a handle of its own)."""
        handle: Any = None
        finished = False
        try:
            if self.location.backend == "chdb":
                chdb_engine_client(self.location.path)  # the one-engine rule, with its clear error
                handle = _take_stream_handle(self.location.path)
                client = handle
            else:
                client = self._get_client()
            with client.query_row_block_stream(sql, parameters=params, settings=self._settings()) as stream:
                for block in stream:
                    yield from block
            finished = True
        except (ClickHouseError, OSError) as exc:
            raise self._error(exc) from exc
        finally:
            if handle is not None:
                if finished:
                    _return_stream_handle(self.location.path, handle)
                else:
                    handle.close()

    def _stream(
        self, sql: str, params: dict[str, Any], query: SpanQuery, convert: Callable[[Any], Span] = row_to_span
    ) -> Iterator[Span]:
        for row in self._rows(sql, params):
            span = convert(row)
            if query.matches(span):  # belt and braces: the SQL is already exact
                yield span

    def item_spans(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanItem]:
        """The items of the selected spans (the `SpanSource` protocol).

        Only spans whose `dreadnode.outputs` may hold an item are read and decoded; the others are
        counted in `stats.spans` with one count query, so the stats equal a file source's.
        """
        yield from items_of_units(self.item_units(query, stats), query, stats)

    def item_units(self, query: SpanQuery, stats: DecodeStats) -> Iterator[SpanUnit]:
        """Each candidate span as a unit keyed by the engine's digest of what decoding it reads.

        Only the columns and attributes that decide a span's items are transferred; the spans that
        cannot carry an item are counted in `stats.spans` by the same query (one more row, marked by
        its first column), so a small rebuild makes one round trip to the engine, not two.
        """
        where, params = self._where(query)
        # The count row also says how many candidates there are: chDB may end a stream quietly when
        # max_execution_time strikes, and a short stream must be a timeout (504), never a rebuild that
        # silently skipped spans.
        marker = _NO_ITEM_SPAN.replace("toInt64(0)", f"toInt64(countIf({_ITEM_CANDIDATE}))", 1)
        sql = (f"SELECT toUInt64(0), hex(sipHash128({_ITEM_SPAN_COLUMNS})), {_ITEM_SPAN_COLUMNS}"
               f" FROM {self._table} WHERE ({where}) AND {_ITEM_CANDIDATE}"
               f" UNION ALL SELECT 1 + countIf(NOT {_ITEM_CANDIDATE}), {marker} FROM {self._table}"
               f" WHERE {where}")
        others: int | None = None
        candidates = streamed = 0
        for row in self._rows(sql, params):
            if row[0]:
                others, candidates = int(row[0]) - 1, int(row[2])
                continue
            streamed += 1
            yield SpanUnit(_UNIT_KEY_PREFIX + bytes.fromhex(row[1]), functools.partial(_decode_item_row, row[1:]))
        if others is None or streamed < candidates:
            raise SpanStoreTimeout(f"span store {self.location.display} ended the stream early ({streamed} of "
                                   f"{candidates if others is not None else 'an unknown number of'} spans; "
                                   f"time limit {self.timeout_s:g}s)")
        stats.spans += others

    def input_size(self, query: SpanQuery) -> int:
        """How many candidate spans `item_units` will stream for `query` (a unit is one span)."""
        where, params = self._where(query)
        return self._count(f"({where}) AND {_ITEM_CANDIDATE}", params)

    def count_spans(self, query: SpanQuery | None = None) -> int:
        """How many spans the table holds, or how many `query` selects."""
        where, params = self._where(query) if query is not None else ("1", {})
        return self._count(where, params)

    def _count(self, where: str, params: dict[str, Any]) -> int:
        return int(self.scalar(f"SELECT count() FROM {self._table} WHERE {where}", params) or 0)
