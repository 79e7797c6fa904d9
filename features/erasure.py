"""Erasing customers from the Feast online store (the embedded SQLite one).

Feast has no API to delete an entity's rows. The SQLite online store keeps one table per
feature view, keyed by the serialized entity key; `erase_online` deletes the customers'
keys from every such table and vacuums the file so their bytes are gone. (A Redis online
store expires nothing by itself: its keys are left to a re-materialization.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

__all__ = ["erase_online"]

SERIALIZATION_VERSION = 3  # as feature_store.yaml says
ENTITY_KEY = "customer_id"  # the customer entity's join key (`features.objects`)


def _key(customer_id: str) -> bytes:
    proto = EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(string_val=customer_id)])
    return serialize_entity_key(proto, entity_key_serialization_version=SERIALIZATION_VERSION)


def erase_online(*, online_db: Path, customer_ids: Iterable[str]) -> int:
    """Delete the customers' rows from the SQLite online store at `online_db`; returns rows
    deleted (0 when there is no store yet)."""
    if not online_db.exists():
        return 0
    keys = [(_key(c),) for c in customer_ids]
    con = sqlite3.connect(online_db)
    try:
        tables = [
            name
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(c[1] == "entity_key" for c in con.execute(f'PRAGMA table_info("{name}")'))
        ]
        deleted = 0
        for table in tables:
            before = con.total_changes
            con.executemany(f'DELETE FROM "{table}" WHERE entity_key = ?', keys)
            deleted += con.total_changes - before
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()
    return deleted
