"""Web and app events: Segment spec messages, from files or the HTTP collector."""

from warehouse.schemas import CONSENT_PURPOSES, EventKind, Source
from warehouse.schemas import Column as C
from warehouse.tables import raw_table


def _track(event: str) -> str:
    return f"r.type = 'track' AND r.event = '{event}'"


SOURCE = Source(
    name="events",
    key="message_id",
    columns=(
        C("message_id", "VARCHAR", True),
        C("type", "VARCHAR", True),
        C("event", "VARCHAR"),
        C("anonymous_id", "VARCHAR"),
        C("user_id", "VARCHAR"),
        C("previous_id", "VARCHAR"),
        C("group_id", "VARCHAR"),
        C("timestamp", "TIMESTAMP", True),
        C("sent_at", "TIMESTAMP"),
        C("received_at", "TIMESTAMP"),
        C("properties", "JSON"),
        C("traits", "JSON"),
        C("context", "JSON"),
        C("integrations", "JSON"),
    ),
    time="timestamp",
    kind="activity",
    segment_messages=True,
    records={
        "email": "traits->>'email'",
        "phone": "traits->>'phone'",
        "user_id": "user_id",
        "anonymous_id": "anonymous_id",
        "previous_id": "previous_id",
        # `identify` traits may carry consent decisions (`consent_email: false`).
        **{
            f"consent_{purpose}": f"CASE WHEN type = 'identify' THEN "
            f"TRY_CAST(traits->>'consent_{purpose}' AS BOOLEAN) END"
            for purpose in CONSENT_PURPOSES
        },
    },
    events={
        "cart_add": EventKind(_track("Product Added")),
        # Orders are the system of record: an `Order Completed` event counts only for an
        # order that never reached the orders table.
        "purchase": EventKind(
            _track("Order Completed") + f" AND NOT EXISTS (SELECT 1 FROM {raw_table('orders')} o"
            " WHERE o.order_id = r.properties->>'order_id')",
            requires=("orders",),
        ),
        "page_view": EventKind("r.type IN ('page', 'screen')"),
    },
)
