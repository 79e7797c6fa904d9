"""The source catalog: one declaration per source, read by every stage. A source declared
here, outside the package (loyalty cards), is loaded, resolved into the customers it
belongs to, counted by the features and offered to segment rules as an event kind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import warehouse
from features import build_snapshots
from pipelines import flows
from pipelines.config import Settings
from resolution import ResolutionSettings
from resolution.records import RAW_COLUMNS
from segments.fields import event_kinds, prepare
from warehouse.schemas import RECORD_ROLES, Column, EventKind, Source
from warehouse.sources import SOURCES, register, survivorship_order

LOYALTY_CARDS = Source(
    name="loyalty_cards",
    key="card_id",
    columns=(
        Column("card_id", "VARCHAR", True),
        Column("holder", "VARCHAR"),
        Column("email", "VARCHAR"),
        Column("store_id", "VARCHAR"),
        Column("issued_at", "TIMESTAMP", True),
    ),
    time="issued_at",
    kind="identity",
    records={"email": "email", "full_name": "holder", "store_id": "store_id", "is_person": "TRUE"},
    events={"card_issued": EventKind()},
)


@pytest.fixture
def loyalty_cards() -> Iterator[Source]:
    register(LOYALTY_CARDS)
    yield LOYALTY_CARDS
    del SOURCES[LOYALTY_CARDS.name]


def test_declarations_are_checked_and_agree_with_resolution() -> None:
    assert RAW_COLUMNS.split(", ")[2:] == list(RECORD_ROLES)
    assert survivorship_order() == ResolutionSettings().source_priority
    with pytest.raises(ValueError, match="unknown role 'mail'; time 'when' is not a column"):
        Source(
            name="broken", key="id", columns=(Column("id", "VARCHAR", True),), time="when",
            kind="activity", records={"mail": "id"},
        )  # fmt: skip
    orders = SOURCES["orders"]
    assert orders.table == "raw_orders"
    assert orders.record("seen_at") == '"ordered_at"' and orders.record("email") == "NULL::VARCHAR"
    assert SOURCES["events"].record("is_person") == "FALSE"


def test_a_declared_source_is_loaded_resolved_featurized_and_segmented(
    served: Settings, tmp_path: Path, loyalty_cards: Source
) -> None:
    root = tmp_path / "data"
    shutil.copytree(served.data_dir, root)
    settings = served.model_copy(update={"data_dir": root})
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        contacts = con.execute(
            "SELECT c.contact_id, c.email, c.first_name || ' ' || c.last_name, m.customer_id "
            "FROM raw_crm_contacts c JOIN identity_map m "
            "ON m.source = 'crm_contacts' AND m.record_key = c.contact_id "
            "WHERE c.email IS NOT NULL ORDER BY c.contact_id LIMIT 4"
        ).fetchall()
    cards = pd.DataFrame(
        {
            "card_id": [f"L{i}" for i in range(len(contacts))],
            "holder": [name for _, _, name, _ in contacts],
            "email": [f"  {email.upper()} " for _, email, _, _ in contacts],  # as typed at a till
            "store_id": "S001",
            "issued_at": "2024-03-01 10:00",
        }
    )
    cards.to_csv(tmp_path / "loyalty_cards.csv", index=False)

    con = warehouse.connect(settings.paths.warehouse)  # creates the declared raw table
    try:
        report = warehouse.load_file(con, path=tmp_path / "loyalty_cards.csv")
    finally:
        con.close()
    assert (report.source, report.rows_loaded, report.rows_quarantined) == ("loyalty_cards", 4, 0)

    resolved = flows.resolve.run(settings)
    assert resolved.result.figures["records"] > 4
    con = warehouse.connect(settings.paths.warehouse)
    try:
        linked = dict(
            con.execute(
                "SELECT record_key, customer_id FROM identity_map WHERE source = 'loyalty_cards'"
            ).fetchall()
        )
        assert linked == {f"L{i}": customer for i, (*_, customer) in enumerate(contacts)}

        as_of = datetime(2024, 6, 1)
        build_snapshots(con, as_of=[as_of], feast_dir=tmp_path / "feast", settings=served.features)
        counted = con.execute(
            "SELECT f.customer_id, f.linked_identities, f.linked_sources, "
            "(SELECT count(*) FROM identity_map m LEFT JOIN raw_crm_contacts c "
            "   ON m.source = 'crm_contacts' AND m.record_key = c.contact_id "
            " LEFT JOIN raw_accounts a ON m.source = 'accounts' AND m.record_key = a.user_id "
            " WHERE m.customer_id = f.customer_id AND (m.source = 'loyalty_cards' "
            "   OR c.created_at < $at OR a.signup_at < $at)) "
            "FROM customer_profile_features f "
            "WHERE f.customer_id IN (SELECT unnest($customers)) AND f.event_timestamp = $at",
            {"at": as_of, "customers": list(linked.values())},
        ).fetchall()
        assert len(counted) == len(set(linked.values()))
        for _, identities, _, expected in counted:
            assert identities == expected  # the card counts as a linked identity

        assert [p.tables for p in event_kinds()["card_issued"]] == [("raw_loyalty_cards",)]
        catalog = prepare(con, as_of=datetime(2030, 1, 1))
        assert "card_issued" in catalog.events
        issued = con.execute(
            "SELECT count(*) FROM _segment_events WHERE kind = 'card_issued'"
        ).fetchone()
        assert issued == (4,)
    finally:
        con.close()
