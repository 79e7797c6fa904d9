"""Online lookup of customers' feature vectors from Feast's online store.

`OnlineFeatures` resolves the service's feature views once. With the embedded SQLite
online store a lookup is one primary-key query per view on the table Feast owns (the
query of Feast's `SqliteOnlineStore.online_read`), and the stored `Value` messages are
decoded together: `vectors` reads the numeric ones straight from their wire format into
one float matrix (what the models read), `lookup` and `get` turn each into its Python
value. Feast's own `online_read` parses every value and converts every row's timestamp
one by one, which is most of a batch's cost. Another online store (Redis) is read
through `Provider.online_read`, then decoded the same way. Keep one instance per
process; build a new one after `cip features` changes the repo's definitions.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import compress, repeat
from pathlib import Path

import numpy as np
import pandas as pd
from feast import FeatureStore, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import compute_table_id
from feast.infra.online_stores.sqlite import SqliteOnlineStore, convert_timestamp
from feast.infra.provider import get_provider
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type

__all__ = ["OnlineFeatures", "OnlineRows", "OnlineVectors"]

# Value kinds read as they are; the rest (lists, timestamps, maps, JSON) through Feast.
_SCALARS = frozenset(
    ("int32_val", "int64_val", "float_val", "double_val", "string_val", "bool_val")
)
# Wire format of a `Value` holding one number: a tag byte (field number << 3 | wire type),
# then a varint or a little-endian float. Longest: an int64 as a 10-byte varint.
_INT32, _INT64, _DOUBLE, _FLOAT, _BOOL = 0x18, 0x20, 0x29, 0x35, 0x38
_WIDTH = 11
_KEYS_PER_QUERY = 10_000  # under SQLite's limit on a statement's parameters (32,766)


def _python(value: Value) -> object:
    kind = value.WhichOneof("val")
    if kind in _SCALARS:
        return getattr(value, kind)
    if kind is None or kind == "null_val":
        return None
    return feast_value_type_to_python_type(value)


def _numbers(blobs: Sequence[bytes], columns: Sequence[int], names: Sequence[str]) -> np.ndarray:
    """Serialized `Value`s as floats (NaN for null), numbers decoded in bulk from their wire
    format; any other kind through protobuf (value i is of feature `names[columns[i]]`)."""
    out = np.full(len(blobs), np.nan)
    if not blobs:
        return out
    raw = b"".join(blob[:_WIDTH].ljust(_WIDTH, b"\0") for blob in blobs)
    cells = np.frombuffer(raw, np.uint8).reshape(-1, _WIDTH)
    tag = cells[:, 0]
    double = tag == _DOUBLE
    out[double] = cells[double, 1:9].copy().view("<f8")[:, 0]
    single = tag == _FLOAT
    out[single] = cells[single, 1:5].copy().view("<f4")[:, 0]
    varint = np.isin(tag, (_INT32, _INT64, _BOOL))
    groups = cells[varint, 1:].astype(np.uint64)  # zeros after the last byte add nothing
    shifts = np.arange(_WIDTH - 1, dtype=np.uint64) * np.uint64(7)
    out[varint] = ((groups & np.uint64(0x7F)) << shifts).sum(axis=1).view(np.int64)
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    for i in np.flatnonzero(~(double | single | varint) & (lengths > 0)):
        value = _python(Value.FromString(blobs[i]))
        if value is not None:
            try:
                out[i] = float(value)
            except (TypeError, ValueError):
                feature = names[columns[i]]
                raise TypeError(f"feature {feature!r} is not a number: {value!r}") from None
    return out


@dataclass(frozen=True)
class OnlineRows:
    """Feature vectors of several customers, and when each was computed."""

    frame: pd.DataFrame
    """`customer_id`, then the service's features in order; nulls for a customer never
    materialized."""
    as_of: list[datetime | None]
    """Per customer, the oldest snapshot time among the views that have a row (UTC)."""


@dataclass(frozen=True)
class OnlineVectors:
    """Numeric feature vectors of several customers, and when each was computed."""

    values: np.ndarray
    """One row per customer asked for, one float column per feature (`names`); NaN for a
    null or a customer never materialized."""
    names: list[str]
    as_of: list[datetime | None]
    """Per customer, the oldest snapshot time among the views read that have a row (UTC)."""


@dataclass(frozen=True)
class _Stored:
    """What the online store holds for some distinct customers: each stored value's
    customer (position), feature (position) and serialized `Value`, and per customer the
    oldest time among the views that have a row."""

    rows: list[int]
    columns: list[int]
    blobs: list[bytes]
    as_of: list[datetime | None]


class OnlineFeatures:
    """Latest materialized features of one service, by `customer_id`.

    `cache_rows`: how many customers' decoded `vectors` to keep between calls (0: none;
    the SQLite online store only, whose changes are seen; see `_cached`).
    """

    def __init__(
        self, store: FeatureStore, *, service: str = "churn_v1", cache_rows: int = 0
    ) -> None:
        self.store = store
        self.service = service
        self.cache_rows = cache_rows
        projections = store.get_feature_service(service).feature_view_projections
        self._views = [
            (store.get_feature_view(p.name), [f.name for f in p.features]) for p in projections
        ]
        self.names = [name for _, names in self._views for name in names]
        self._provider = get_provider(store.config)
        self._sqlite: sqlite3.Connection | None = None
        self._cache: dict[tuple[str, ...], dict[str, tuple[np.ndarray, datetime | None]]] = {}
        self._cache_version: int | None = None
        self._lock = threading.Lock()

    def get(self, customer_id: str) -> dict[str, object]:
        """The feature vector of one customer, in service order; all None if never materialized."""
        grid, _ = self._objects([str(customer_id)])
        return dict(zip(self.names, grid[0], strict=True))

    def get_many(self, customer_ids: Sequence[str]) -> pd.DataFrame:
        """Feature vectors of many customers: one row each, in the order given."""
        return self.lookup(customer_ids).frame

    def lookup(self, customer_ids: Sequence[str]) -> OnlineRows:
        """Feature vectors of many customers (one row each, in the order given, values as
        Feast types them) and when each was computed."""
        distinct, take = _distinct(customer_ids)
        grid, as_of = self._objects(distinct)
        frame = pd.DataFrame(grid[take].tolist(), columns=self.names)
        frame.insert(0, "customer_id", list(customer_ids))
        return OnlineRows(frame, [as_of[i] for i in take])

    def vectors(
        self, customer_ids: Sequence[str], *, names: Sequence[str] | None = None
    ) -> OnlineVectors:
        """Numeric features `names` (default: all) of many customers, one row each in the
        order given, and when each was computed; a value that is not a number raises
        TypeError. Only the views holding `names` are read; with `cache_rows`, through
        the cache (see `_cached`)."""
        names = list(self.names if names is None else names)
        distinct, take = _distinct(customer_ids)
        if self.cache_rows and isinstance(self._provider.online_store, SqliteOnlineStore):
            values, as_of = self._cached(distinct, names)
        else:
            values, as_of = self._numeric(distinct, names)
        return OnlineVectors(values[take], names, [as_of[i] for i in take])

    def _numeric(
        self, customer_ids: list[str], names: list[str]
    ) -> tuple[np.ndarray, list[datetime | None]]:
        """Float values of distinct customers (rows) and `names` (columns), and times."""
        stored = self._stored(customer_ids, names)
        values = np.full((len(customer_ids), len(names)), np.nan)
        values[stored.rows, stored.columns] = _numbers(stored.blobs, stored.columns, names)
        return values, stored.as_of

    def _cached(
        self, customer_ids: list[str], names: list[str]
    ) -> tuple[np.ndarray, list[datetime | None]]:
        """`_numeric` with the rows already decoded kept, per customer, for the next calls.

        The misses are read in one read transaction, which also reads SQLite's
        `data_version`: any commit to the file by another connection (a materialization,
        an erasure, in any process) changes it, and the cache is emptied, so a cached row
        is always what an uncached read would return. The cache is also emptied when it
        would hold more than `cache_rows` customers."""
        with self._lock:
            con = self._connection()
            con.execute("BEGIN")
            try:
                (version,) = con.execute("PRAGMA data_version").fetchone()
                if version != self._cache_version:
                    self._cache, self._cache_version = {}, version
                cache = self._cache.setdefault(tuple(names), {})
                found = {c: cache[c] for c in customer_ids if c in cache}
                missing = [c for c in customer_ids if c not in found]
                if missing:
                    values, as_of = self._numeric(missing, names)
            finally:
                con.execute("COMMIT")
            if missing:
                read = dict(zip(missing, zip(values, as_of, strict=True), strict=True))
                found.update(read)
                if len(cache) + len(read) > self.cache_rows:
                    cache.clear()
                if len(read) <= self.cache_rows:
                    cache.update(read)
        rows = [found[c] for c in customer_ids]
        values = np.array([row for row, _ in rows]).reshape(len(rows), len(names))
        return values, [stamp for _, stamp in rows]

    def _objects(self, customer_ids: list[str]) -> tuple[np.ndarray, list[datetime | None]]:
        """Python values of distinct customers (rows) and features (columns), and times."""
        stored = self._stored(customer_ids, self.names)
        grid = np.full((len(customer_ids), len(self.names)), None, dtype=object)
        grid[stored.rows, stored.columns] = [_python(Value.FromString(b)) for b in stored.blobs]
        return grid, stored.as_of

    def _stored(self, customer_ids: list[str], names: list[str]) -> _Stored:
        """The stored values of `names` for distinct customers, from the views holding them."""
        column = {name: j for j, name in enumerate(names)}
        unknown = sorted(set(column) - set(self.names))
        if unknown:
            raise KeyError(f"not features of {self.service}: {', '.join(unknown)}")
        config = self.store.config
        protos = [
            EntityKey(join_keys=["customer_id"], entity_values=[Value(string_val=c)])
            for c in customer_ids
        ]
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(p, entity_key_serialization_version=version) for p in protos]
        position = {key: i for i, key in enumerate(keys)}
        stored = _Stored([], [], [], [None] * len(keys))
        for view, view_names in self._views:
            if column.keys().isdisjoint(view_names):
                continue
            found_keys, found_names, blobs, stamps = self._view_rows(view, protos, keys)
            rows = list(map(position.__getitem__, found_keys))
            columns = list(map(column.get, found_names))
            if None in columns:  # features of the view not asked for
                wanted = list(map(operator.is_not, columns, repeat(None)))
                rows, columns, blobs = (list(compress(x, wanted)) for x in (rows, columns, blobs))
            stored.rows.extend(rows)
            stored.columns.extend(columns)
            stored.blobs.extend(blobs)
            for row, stamp in dict(zip(rows, stamps, strict=False)).items():
                oldest = stored.as_of[row]
                if oldest is None or stamp < oldest:
                    stored.as_of[row] = stamp
        return stored

    def _view_rows(
        self, view: FeatureView, protos: list[EntityKey], keys: list[bytes]
    ) -> tuple[Sequence[bytes], Sequence[str], Sequence[bytes], Sequence[datetime]]:
        """Every stored value of `view` for the customers of `protos` (serialized: `keys`),
        as columns: serialized entity key, feature, serialized value, time in UTC."""
        config = self.store.config
        if isinstance(self._provider.online_store, SqliteOnlineStore):
            table = compute_table_id(
                config.project, view, config.registry.enable_online_feature_view_versioning
            ).replace('"', '""')
            query = f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" '
            found = []
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                found += self._connection().execute(f"{query}WHERE entity_key IN ({marks})", chunk)
            if not found:
                return (), (), (), ()
            found_keys, names, blobs, raw = zip(*found, strict=True)
            times = {stamp: _utc(convert_timestamp(stamp)) for stamp in set(raw)}
            return found_keys, names, blobs, list(map(times.__getitem__, raw))
        read = self._provider.online_read(config=config, table=view, entity_keys=protos)
        found = [
            (key, name, value.SerializeToString(), stamp)
            for key, (stamp, values) in zip(keys, read, strict=True)
            for name, value in (values or {}).items()
        ]
        return tuple(zip(*found, strict=True)) if found else ((), (), (), ())

    def _connection(self) -> sqlite3.Connection:
        """A read-only connection to the SQLite online store's file (opened once)."""
        if self._sqlite is None:
            path = Path(SqliteOnlineStore._get_db_path(self.store.config)).resolve()
            self._sqlite = sqlite3.connect(
                f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False
            )
        return self._sqlite


def _distinct(customer_ids: Sequence[str]) -> tuple[list[str], list[int]]:
    """The distinct ids, and for each id given its position among them."""
    position: dict[str, int] = {}
    take = [position.setdefault(str(c), len(position)) for c in customer_ids]
    return list(position), take


def _utc(stamp: datetime) -> datetime:
    """A stored time as Feast's `online_read` returns it: naive ones are UTC."""
    return stamp.astimezone(UTC) if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
