"""The customer directory follows resolution's merges: an old customer_id still resolves."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from serving.directory import InvalidIdentifier, load_directory


def _warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE profiles AS SELECT * FROM (VALUES ('c1', TIMESTAMP '2026-11-01')) "
        "AS t(customer_id, updated_at)"
    )
    con.execute(
        "CREATE TABLE customer_identifiers AS SELECT * FROM (VALUES "
        "('email', 'ann@example.com', 'c1')) AS t(id_type, id_value, customer_id)"
    )
    con.execute(
        "CREATE TABLE customer_id_changes (changed_at TIMESTAMP, run_id VARCHAR, "
        "change_type VARCHAR, customer_id VARCHAR, other_customer_id VARCHAR, detail VARCHAR)"
    )
    rows = [
        (datetime(2026, 1, 1), "r1", "created", "c1", None, None),
        (datetime(2026, 2, 1), "r2", "merged", "c2", "c3", None),  # c3 into c2 ...
        (datetime(2026, 3, 1), "r3", "merged", "c1", "c2", None),  # ... then c2 into c1
        (datetime(2026, 3, 1), "r3", "merged", "c8", "c9", None),  # c8 itself is gone
    ]
    con.executemany("INSERT INTO customer_id_changes VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return path


def test_merged_ids_reach_the_surviving_customer(tmp_path: Path) -> None:
    directory = load_directory(warehouse=_warehouse(tmp_path / "wh.duckdb"), default_region="US")
    assert directory.find("customer_id", "c1") == "c1"
    assert directory.find("customer_id", "c2") == "c1"
    assert directory.find("customer_id", " c3 ") == "c1"  # through the chain
    assert directory.find("customer_id", "c9") is None  # merged into an id that is gone too
    assert directory.find("customer_id", "c404") is None
    assert directory.find("email", "Ann@Example.com") == "c1"
    with pytest.raises(InvalidIdentifier, match="email is not a valid email"):
        directory.find("email", "no at sign")  # normalized once: invalid is not unknown
