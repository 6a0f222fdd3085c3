"""`ItemStore`: the only writer of items, links and events (SQLite through sqlite-utils).

Every write runs in its own `BEGIN IMMEDIATE` transaction, so writers serialize and a reader never
sees half a change. WAL lets readers run beside a writer; `synchronous=FULL` makes a write durable
before it is acknowledged (a disposition is never acknowledged and then lost).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import sqlite_utils

from harness.items import rows as rowcodec
from harness.items.errors import InvalidLink, ItemNotFound, LinkNotFound, RefConflict, TargetNotFound
from harness.items.schema import migrate
from harness.model import (
    SPAN_OWNED_FIELDS,
    Disposition,
    ItemEvent,
    ItemRow,
    JSONObject,
    LinkRow,
    LinkSpec,
    RowChanges,
)


def utc_now() -> str:
    """ISO 8601 in UTC with a fixed width, so text order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
"""How long a writer waits for another one (in this process or another) before `database is locked`."""

_ids = threading.local()
_ID_BATCH = 256


def _forget_random_bytes() -> None:
    global _ids
    _ids = threading.local()  # a forked child must never hand out its parent's ids


os.register_at_fork(after_in_child=_forget_random_bytes)


def new_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as text: 48 bits of Unix milliseconds, then random bits
    from os.urandom, read 256 ids at a time (a rebuild makes millions; a system call each was 5 % of a
    rebuild). Time order keeps every index keyed by an id (items, events, links, digests) appending near
    its end: with random ids, each new row wrote a random page of each such index, and healing 100 items
    in a store of 1,000,000 cost three times as much as in a store of 10,000 (bench/scaling.py)."""
    pool: bytes = getattr(_ids, "pool", b"")
    at: int = getattr(_ids, "at", 0)
    if at >= len(pool):
        pool, at = os.urandom(16 * _ID_BATCH), 0
        _ids.pool = pool
    _ids.at = at + 16
    raw = bytearray(pool[at : at + 16])
    raw[0:6] = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    raw[6] = (raw[6] & 0x0F) | 0x70
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Actor:
    """Who writes: recorded in created_by, disposition.updated_by and events (never a secret)."""

    actor_type: str
    actor_id: str | None


@dataclass(frozen=True)
class NewItem:
    """A create_item request, already validated against the contract."""

    item_type: str
    data: JSONObject
    dedupe_key: str | None = None
    ref: str | None = None
    title: str | None = None
    status: str | None = None
    notes: str | None = None
    schema_ref: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    capability: str | None = None
    capability_version: str | None = None
    source: str = "api"
    links: tuple[LinkSpec, ...] = ()

    @classmethod
    def from_body(cls, body: JSONObject) -> NewItem:
        """A create_item body (already valid against the contract) as the store takes it."""
        session_id = body.get("session_id")
        return cls(
            item_type=body["item_type"],
            data=body.get("data") or {},
            dedupe_key=body.get("dedupe_key"),
            ref=body.get("ref"),
            title=body.get("title"),
            status=body.get("status"),
            notes=body.get("notes"),
            schema_ref=body.get("schema_ref"),
            session_id=session_id.lower() if isinstance(session_id, str) else None,
            trace_id=body.get("trace_id"),
            span_id=body.get("span_id"),
            capability=body.get("capability"),
            capability_version=body.get("capability_version"),
            source=body.get("source") or "api",
            links=tuple(
                LinkSpec(relationship=link["relationship"], target_ref=link.get("target_ref"),
                         target_item_id=link.get("target_item_id"))
                for link in body.get("links") or []
            ),
        )


_UNSET: Any = object()

REFRESHABLE_COLUMNS: frozenset[str] = frozenset(
    {*SPAN_OWNED_FIELDS, "span_order", "updated_at", "severity", "category", "search_text"}
)
"""What a rebuild may write on an existing row: span-owned fields and what derives from them (D8)."""


@dataclass(frozen=True)
class ItemPatch:
    """An update_item request; `_UNSET` fields were absent (an explicit None un-triages)."""

    data: JSONObject | None = None
    title: Any = _UNSET
    status: Any = _UNSET
    notes: Any = _UNSET


UNSET = _UNSET

def _insert(table: str, columns: Sequence[str], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


_INSERT_ITEM = _insert("items", rowcodec.ROW_COLUMNS)
_INSERT_EVENT = _insert(
    "events", ("id", "project_id", "item_id", "seq", "event_type", "actor_type", "actor_id", "payload", "created_at")
)
_INSERT_LINK = _insert(
    "links", ("id", "project_id", "source_item_id", "target_item_id", "relationship", "created_at", "origin"),
    "INSERT OR IGNORE",
)
_REFRESH_COLUMNS: tuple[str, ...] = tuple(c for c in rowcodec.ROW_COLUMNS if c in REFRESHABLE_COLUMNS)
_UPDATE_REFRESH = f"UPDATE items SET {', '.join(f'{c} = ?' for c in _REFRESH_COLUMNS)} WHERE id = ?"
_UPDATE_REFRESH_LINKS = (
    f"UPDATE items SET {', '.join(f'{c} = ?' for c in (*_REFRESH_COLUMNS, 'link_specs'))} WHERE id = ?"
)


@dataclass(frozen=True)
class RowState:
    """What rebuild needs to know of an existing row before deciding whether to read it in full."""

    id: str
    digest: bytes | None
    """The digest of the span report the row fully reflects (see schema `_v2`); None: compare in full."""
    has_disposition: bool
    has_link_specs: bool


class LinkPlanLike(Protocol):
    add: list[LinkRow]
    remove: list[str]
    unresolved: int
    events: list[ItemEvent]


class LinkPlanner(Protocol):
    """The signature of harness.reconcile.plan_links, which the caller passes in (layers stay apart)."""

    def __call__(
        self,
        source_item_id: str,
        specs: Sequence[LinkSpec],
        ref_to_id: Mapping[str, str],
        known_ids: AbstractSet[str],
        current: Sequence[LinkRow],
        *,
        now: str,
        new_id: Callable[[], str],
    ) -> LinkPlanLike: ...


class ItemStore:
    """One SQLite file; safe to share between threads (each thread gets its own connection)."""

    def __init__(self, path: Path | str, *, clock: Callable[[], str] = utc_now) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        migrate(self.db)

    # -- connections and transactions -------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            db = sqlite_utils.Database(conn)
            self._local.db = db
            with self._lock:
                self._connections.append(conn)
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's raw connection (prepared statements for the bulk paths of rebuild)."""
        conn: sqlite3.Connection = self.db.conn
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction: all of it lands, or none of it.

        Writers of this process queue on a lock first (in turn, and without SQLite's busy-wait sleeps,
        which made the slowest of 32 concurrent rebuilds wait seconds); the wait is bounded like SQLite's
        busy timeout and ends the same way, `database is locked`. Writers of other processes still meet
        at SQLite's lock.
        """
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise sqlite3.OperationalError("database is locked")
        try:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            self._write_lock.release()

    @contextmanager
    def page_cache(self, mib: int) -> Iterator[None]:
        """This thread's connection with an SQLite page cache of `mib` MiB for a while (bulk work)."""
        conn = self.conn
        before = int(conn.execute("PRAGMA cache_size").fetchone()[0])
        conn.execute(f"PRAGMA cache_size={-1024 * mib}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA cache_size={before}")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    # -- reads --------------------------------------------------------------------------------

    def get_item(self, project_id: str, item_id: str) -> ItemRow | None:
        found = self.query(f"SELECT {rowcodec.READ_COLUMNS_SQL} FROM items WHERE id = ? AND project_id = ?",
                           [item_id, project_id])
        return rowcodec.row_from_columns(found[0]) if found else None

    def _require_item(self, project_id: str, item_id: str) -> ItemRow:
        row = self.get_item(project_id, item_id)
        if row is None:
            raise ItemNotFound("Item not found")
        return row

    def item_by_dedupe_key(self, project_id: str, dedupe_key: str) -> ItemRow | None:
        found = self.query(
            f"SELECT {rowcodec.READ_COLUMNS_SQL} FROM items WHERE project_id = ? AND dedupe_key = ?",
            [project_id, dedupe_key],
        )
        return rowcodec.row_from_columns(found[0]) if found else None

    def rows_by_dedupe_keys(self, project_id: str, keys: Sequence[str]) -> dict[str, ItemRow]:
        result: dict[str, ItemRow] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            for c in self.query(
                f"SELECT {rowcodec.READ_COLUMNS_SQL} FROM items WHERE project_id = ? AND dedupe_key IN ({marks})",
                [project_id, *chunk],
            ):
                row = rowcodec.row_from_columns(c)
                result[c["dedupe_key"]] = row
        return result

    def ref_holders(self, project_id: str, refs: Sequence[str]) -> dict[str, str]:
        """ref -> the holder's dedupe_key (its id when it has none), for the refs asked about."""
        result: dict[str, str] = {}
        for chunk in _chunks(refs, 500):
            marks = ",".join("?" * len(chunk))
            for c in self.query(
                f"SELECT ref, id, dedupe_key FROM items WHERE project_id = ? AND ref IN ({marks})",
                [project_id, *chunk],
            ):
                result[c["ref"]] = c["dedupe_key"] or c["id"]
        return result

    def ids_by_refs(self, project_id: str, refs: Sequence[str]) -> dict[str, str]:
        result: dict[str, str] = {}
        for chunk in _chunks(refs, 500):
            marks = ",".join("?" * len(chunk))
            for c in self.query(
                f"SELECT ref, id FROM items WHERE project_id = ? AND ref IN ({marks})", [project_id, *chunk]
            ):
                result[c["ref"]] = c["id"]
        return result

    def existing_ids(self, project_id: str, ids: Sequence[str]) -> set[str]:
        result: set[str] = set()
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for c in self.query(
                # `+project_id`: look rows up by id; with many ids SQLite would otherwise scan the project.
                f"SELECT id FROM items WHERE +project_id = ? AND id IN ({marks})", [project_id, *chunk]
            ):
                result.add(c["id"])
        return result

    def links_of(self, item_id: str) -> list[LinkRow]:
        return [
            _link_from_columns(c)
            for c in self.query(
                "SELECT * FROM links WHERE source_item_id = ? OR target_item_id = ? ORDER BY created_at, id",
                [item_id, item_id],
            )
        ]

    def outgoing_links(self, item_id: str, origin: str) -> list[LinkRow]:
        return [
            _link_from_columns(c)
            for c in self.query(
                "SELECT * FROM links WHERE source_item_id = ? AND origin = ? ORDER BY created_at, id",
                [item_id, origin],
            )
        ]

    def events_of(self, item_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM events WHERE item_id = ? ORDER BY seq", [item_id])

    # -- writes -------------------------------------------------------------------------------

    def create_item(
        self, organization_id: str, project_id: str, new: NewItem, actor: Actor, planner: LinkPlanner
    ) -> tuple[ItemRow, bool]:
        """Create, or return the existing item with the same dedupe_key (a replay: created False)."""
        with self.write():
            if new.dedupe_key is not None:
                existing = self.item_by_dedupe_key(project_id, new.dedupe_key)
                if existing is not None:
                    return existing, False
            if new.ref is not None and self.ids_by_refs(project_id, [new.ref]):
                raise RefConflict(f"An item with ref '{new.ref}' already exists in this project")
            now = self.clock()
            disposition = (
                Disposition(status=new.status, notes=new.notes, updated_at=now, updated_by=actor.actor_id)
                if new.status is not None or new.notes is not None
                else None
            )
            row = ItemRow(
                id=new_id(),
                organization_id=organization_id,
                project_id=project_id,
                item_type=new.item_type,
                data=new.data,
                title=new.title,
                ref=new.ref,
                dedupe_key=new.dedupe_key,
                schema_ref=new.schema_ref,
                session_id=new.session_id,
                trace_id=new.trace_id,
                span_id=new.span_id,
                capability=new.capability,
                capability_version=new.capability_version,
                source=new.source,
                disposition=disposition,
                created_at=now,
                created_by=actor.actor_id,
                updated_at=now,
                link_specs=new.links,
            )
            self.db["items"].insert(rowcodec.row_to_columns(row))  # type: ignore[union-attr]
            self.append_events(
                [ItemEvent(row.id, "created", actor.actor_type, actor.actor_id, {"source": row.source})],
                project_id,
            )
            if new.links:
                self.sync_reported_links(project_id, [row.id], planner)
            return row, True

    def update_item(self, project_id: str, item_id: str, patch: ItemPatch, actor: Actor) -> ItemRow:
        with self.write():
            row = self._require_item(project_id, item_id)
            now = self.clock()
            changed: list[str] = []
            data = row.data
            if patch.data is not None:
                merged = {**row.data, **patch.data}
                if merged != row.data:
                    data = merged
                    changed.append("data")
            title = row.title
            if patch.title is not UNSET and patch.title != row.title:
                title = patch.title
                changed.append("title")
            disposition = self._merged_disposition(row.disposition, patch, now, actor, changed)
            if not changed:
                return row
            updated = replace(row, data=data, title=title, disposition=disposition, updated_at=now)
            columns = rowcodec.row_to_columns(updated)
            self.db["items"].update(item_id, columns)  # type: ignore[union-attr]
            self.append_events(
                [ItemEvent(item_id, "updated", actor.actor_type, actor.actor_id, {"changed": changed})],
                project_id,
            )
            return updated

    @staticmethod
    def _merged_disposition(
        current: Disposition | None, patch: ItemPatch, now: str, actor: Actor, changed: list[str]
    ) -> Disposition | None:
        """Merge status/notes into the overlay; notes alone never change the status (API reference: Items)."""
        status = current.status if current else None
        notes = current.notes if current else None
        if patch.status is not UNSET and patch.status != status:
            status = patch.status
            changed.append("disposition.status")
        if patch.notes is not UNSET and patch.notes != notes:
            notes = patch.notes
            changed.append("disposition.notes")
        if not any(c.startswith("disposition.") for c in changed):
            return current
        return Disposition(status=status, notes=notes, updated_at=now, updated_by=actor.actor_id)

    def bulk_update_status(
        self, project_id: str, item_ids: Sequence[str], status: str | None, actor: Actor
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Best effort per item: (updated ids, [(id, why) for those that could not be read])."""
        updated: list[str] = []
        failed: list[tuple[str, str]] = []
        for item_id in dict.fromkeys(item_ids):
            try:
                self.update_item(project_id, item_id, ItemPatch(status=status), actor)
            except ItemNotFound:
                failed.append((item_id, "Item not found"))
            else:
                updated.append(item_id)
        return updated, failed

    def create_link(
        self,
        project_id: str,
        item_id: str,
        relationship: str,
        target_item_id: str | None,
        target_ref: str | None,
        actor: Actor,
    ) -> tuple[LinkRow, bool]:
        with self.write():
            self._require_item(project_id, item_id)
            if target_item_id is not None:
                target = target_item_id if self.existing_ids(project_id, [target_item_id]) else None
            else:
                target = self.ids_by_refs(project_id, [target_ref or ""]).get(target_ref or "")
            if target is None:
                raise TargetNotFound("Target item not found")
            if target == item_id:
                raise InvalidLink("An item cannot link to itself")
            found = self.query(
                "SELECT * FROM links WHERE source_item_id = ? AND target_item_id = ? AND relationship = ?",
                [item_id, target, relationship],
            )
            if found:
                return _link_from_columns(found[0]), False
            link = LinkRow(new_id(), item_id, target, relationship, self.clock(), "user")
            self.insert_links(project_id, [link])
            self.append_events([_link_event("linked", link, actor)], project_id)
            return link, True

    def delete_link(self, project_id: str, item_id: str, link_id: str, actor: Actor) -> None:
        with self.write():
            self._require_item(project_id, item_id)
            found = self.query(
                "SELECT * FROM links WHERE id = ? AND project_id = ? AND (source_item_id = ? OR target_item_id = ?)",
                [link_id, project_id, item_id, item_id],
            )
            if not found:
                raise LinkNotFound("Link not found")
            link = _link_from_columns(found[0])
            self.db.execute("DELETE FROM links WHERE id = ?", [link_id])
            self.append_events([_link_event("unlinked", link, actor)], project_id)

    # -- building blocks shared with rebuild (call inside `write()`) --------------------------

    def apply_changes(self, changes: RowChanges, project_id: str, rows: dict[str, ItemRow]) -> None:
        """Write a reconcile's decisions. Disposition columns are never written for an existing row.

        `rows` maps id -> the existing row each refresh applies to (read in the same transaction).
        """
        conn = self.conn
        if changes.creates:
            conn.executemany(_INSERT_ITEM, [rowcodec.row_to_values(row) for row in changes.creates])
        plain: list[tuple[Any, ...]] = []
        with_links: list[tuple[Any, ...]] = []
        for refresh in changes.refreshes:
            current = rows[refresh.item_id]
            fields = dict(refresh.changes)
            specs = fields.pop("link_specs", None)
            updated = replace(current, **fields) if fields else current
            columns = rowcodec.row_to_columns(updated)
            values = [columns[name] for name in _REFRESH_COLUMNS]
            if specs is not None:
                with_links.append((*values, rowcodec.link_specs_to_json(tuple(specs)), refresh.item_id))
            else:
                plain.append((*values, refresh.item_id))
        if plain:
            conn.executemany(_UPDATE_REFRESH, plain)
        if with_links:
            conn.executemany(_UPDATE_REFRESH_LINKS, with_links)
        self.append_events(changes.events, project_id, fresh={row.id for row in changes.creates})

    def rebuild_states(self, project_id: str, keys: Sequence[str]) -> dict[str, RowState]:
        """dedupe_key -> the light state of its row, for the keys that have one (see `RowState`)."""
        result: dict[str, RowState] = {}
        conn = self.conn
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            for key, item_id, digest, has_disposition, link_specs in conn.execute(
                "SELECT i.dedupe_key, i.id, d.digest, i.has_disposition, i.link_specs FROM items AS i "
                f"LEFT JOIN item_digests AS d ON d.item_id = i.id WHERE i.project_id = ? AND i.dedupe_key IN ({marks})",
                [project_id, *chunk],
            ):
                result[key] = RowState(item_id, digest, bool(has_disposition), rowcodec.has_link_specs(link_specs))
        return result

    def record_digests(self, digests: Mapping[str, bytes | None]) -> None:
        """Remember (or, for None, forget) the span report each row now fully reflects. Rebuild only."""
        keep = [(item_id, digest) for item_id, digest in digests.items() if digest is not None]
        drop = [(item_id,) for item_id, digest in digests.items() if digest is None]
        if keep:
            self.conn.executemany("INSERT OR REPLACE INTO item_digests (item_id, digest) VALUES (?, ?)", keep)
        if drop:
            self.conn.executemany("DELETE FROM item_digests WHERE item_id = ?", drop)

    def memo_get(self, keys: Sequence[bytes]) -> dict[bytes, str]:
        """The decoded-span memo entries (key -> entry) of the keys it holds."""
        found: dict[bytes, str] = {}
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            found.update(self.conn.execute(f"SELECT key, decoded FROM span_digests WHERE key IN ({marks})",
                                           list(chunk)))
        return found

    def memo_put(self, entries: Sequence[tuple[bytes, str]]) -> None:
        """Remember what units of span input decoded to (key, entry). Rebuild only, inside `write()`."""
        if entries:
            self.conn.executemany("INSERT OR REPLACE INTO span_digests (key, decoded) VALUES (?, ?)", entries)

    def memo_prune(self, keep: int) -> int:
        """Forget the oldest memo entries beyond about the newest `keep` (by insertion; an entry that is
        hit is not refreshed, but one decoded again is re-inserted as new). Returns how many went.
        A cache: an entry forgotten is decoded again when its unit is next read, nothing else."""
        gone = self.conn.execute(
            "DELETE FROM span_digests WHERE rowid <= (SELECT max(rowid) FROM span_digests) - ?", [keep]
        ).rowcount
        return int(gone)

    def insert_links(self, project_id: str, links: Sequence[LinkRow]) -> None:
        if links:
            self.conn.executemany(_INSERT_LINK, [
                (link.id, project_id, link.source_item_id, link.target_item_id, link.relationship, link.created_at,
                 link.origin)
                for link in links
            ])

    def delete_links(self, link_ids: Sequence[str]) -> None:
        for chunk in _chunks(link_ids, 500):
            self.db.execute(f"DELETE FROM links WHERE id IN ({','.join('?' * len(chunk))})", list(chunk))

    def append_events(
        self, events: Sequence[ItemEvent], project_id: str, *, fresh: AbstractSet[str] = frozenset()
    ) -> None:
        """Append events, numbering each item's history from where it stands.

        `fresh`: ids of items created in this transaction with no event yet (their history starts at 1).
        """
        if not events:
            return
        ids = [i for i in dict.fromkeys(e.item_id for e in events) if i not in fresh]
        next_seq: dict[str, int] = {}
        conn = self.conn
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for item_id, seq in conn.execute(
                f"SELECT item_id, MAX(seq) AS seq FROM events WHERE item_id IN ({marks}) GROUP BY item_id",
                list(chunk),
            ):
                next_seq[item_id] = int(seq)
        now = self.clock()
        records = []
        encoded: dict[int, str] = {}  # payload objects shared between events are encoded once
        for event in events:
            seq = next_seq.get(event.item_id, 0) + 1
            next_seq[event.item_id] = seq
            payload = encoded.get(id(event.payload))
            if payload is None:
                payload = encoded[id(event.payload)] = rowcodec.dump_json(event.payload)
            records.append((new_id(), project_id, event.item_id, seq, event.event_type, event.actor_type,
                            event.actor_id, payload, now))
        conn.executemany(_INSERT_EVENT, records)

    def _outgoing_links_by_item(self, item_ids: Sequence[str]) -> dict[str, dict[str, list[LinkRow]]]:
        """item id -> origin -> its outgoing links, each list ordered by (created_at, id) like `outgoing_links`."""
        result: dict[str, dict[str, list[LinkRow]]] = {}
        marks = ",".join("?" * len(item_ids))
        found = self.query(f"SELECT * FROM links WHERE source_item_id IN ({marks}) ORDER BY created_at, id",
                           list(item_ids))
        for c in found:
            result.setdefault(c["source_item_id"], {}).setdefault(c["origin"], []).append(_link_from_columns(c))
        return result

    def sync_reported_links(
        self, project_id: str, item_ids: Sequence[str], planner: LinkPlanner
    ) -> int:
        """Make each item's `reported` links follow its link_specs; returns how many specs stay unresolved.

        `planner` decides (harness.reconcile.plan_links); this only looks up and writes. Links a user
        made are never removed, and a reported link a user link already covers is not added twice.
        """
        unresolved = 0
        for chunk in _chunks(item_ids, 500):
            marks = ",".join("?" * len(chunk))
            specs_by_item = {
                c["id"]: rowcodec.link_specs_from_json(c["link_specs"])
                for c in self.query(
                    f"SELECT id, link_specs FROM items WHERE +project_id = ? AND id IN ({marks})",
                    [project_id, *chunk],
                )
            }
            specs = [s for item_specs in specs_by_item.values() for s in item_specs]
            ref_to_id = self.ids_by_refs(project_id, sorted({s.target_ref for s in specs if s.target_ref}))
            known = self.existing_ids(project_id, sorted({s.target_item_id for s in specs if s.target_item_id}))
            outgoing = self._outgoing_links_by_item(list(specs_by_item))
            adds: list[LinkRow] = []
            removes: list[str] = []
            events: list[ItemEvent] = []
            for item_id, item_specs in specs_by_item.items():
                links = outgoing.get(item_id, {})
                plan = planner(item_id, item_specs, ref_to_id, known, links.get("reported", []),
                               now=self.clock(), new_id=new_id)
                unresolved += plan.unresolved
                if not plan.add and not plan.remove and not plan.events:
                    continue
                user_pairs = {(link.target_item_id, link.relationship) for link in links.get("user", [])}
                added = [link for link in plan.add if (link.target_item_id, link.relationship) not in user_pairs]
                skipped = {link.id for link in plan.add} - {link.id for link in added}
                adds.extend(added)
                removes.extend(plan.remove)
                events.extend(e for e in plan.events if e.payload.get("link_id") not in skipped)
            self.delete_links(removes)
            self.insert_links(project_id, adds)
            self.append_events(events, project_id)
        return unresolved


def _link_event(event_type: str, link: LinkRow, actor: Actor) -> ItemEvent:
    return ItemEvent(
        link.source_item_id,
        event_type,
        actor.actor_type,
        actor.actor_id,
        {"link_id": link.id, "relationship": link.relationship, "target_item_id": link.target_item_id},
    )


def _link_from_columns(c: dict[str, Any]) -> LinkRow:
    return LinkRow(
        id=c["id"],
        source_item_id=c["source_item_id"],
        target_item_id=c["target_item_id"],
        relationship=c["relationship"],
        created_at=c["created_at"],
        origin=c["origin"],
    )


def _chunks(values: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class SpillSet:
    """An insertion-ordered set of strings for one write transaction: kept in memory up to `limit`
    members, then moved into a TEMP table of the store's connection, so memory stays bounded however
    many members a rebuild meets. Create and use it inside `store.write()`; `close()` drops the table.
    """

    _counter = 0

    def __init__(self, store: ItemStore, *, limit: int = 50_000) -> None:
        self._store = store
        self._limit = limit
        self._memory: dict[str, None] = {}
        self._table: str | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, values: Iterable[str]) -> int:
        """Add `values`; returns how many of them were not members yet."""
        if self._table is None:
            before = len(self._memory)
            self._memory.update(dict.fromkeys(values))
            added = len(self._memory) - before
            self._size += added
            if self._size > self._limit:
                self._spill()
            return added
        conn = self._store.conn
        before = conn.total_changes
        conn.executemany(f"INSERT OR IGNORE INTO temp.{self._table} (value) VALUES (?)", ((v,) for v in values))
        added = conn.total_changes - before
        self._size += added
        return added

    def _spill(self) -> None:
        SpillSet._counter += 1
        self._table = f"spill_{id(self):x}_{SpillSet._counter}"
        conn = self._store.conn
        conn.execute(f"CREATE TEMP TABLE {self._table} (seq INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)")
        conn.executemany(f"INSERT INTO temp.{self._table} (value) VALUES (?)", ((v,) for v in self._memory))
        self._memory = {}

    def chunks(self, size: int) -> Iterator[list[str]]:
        """The members in insertion order, `size` at a time."""
        if self._table is None:
            yield from (list(chunk) for chunk in _chunks(list(self._memory), size))
            return
        last = 0
        while True:
            rows = self._store.conn.execute(
                f"SELECT seq, value FROM temp.{self._table} WHERE seq > ? ORDER BY seq LIMIT ?", (last, size)
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [value for _, value in rows]

    def close(self) -> None:
        if self._table is not None:
            self._store.conn.execute(f"DROP TABLE IF EXISTS temp.{self._table}")
            self._table = None
        self._memory = {}
