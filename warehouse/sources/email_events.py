"""E-mail engagement: sends, opens, clicks, unsubscribes and complaints, by address."""

from warehouse.schemas import Column as C
from warehouse.schemas import EventKind, Source

SOURCE = Source(
    name="email_events",
    key="email_event_id",
    columns=(
        C("email_event_id", "VARCHAR", True),
        C("email", "VARCHAR", True),
        C("campaign_id", "VARCHAR"),
        C("event_type", "VARCHAR", True),
        C("occurred_at", "TIMESTAMP", True),
    ),
    time="occurred_at",
    kind="activity",
    records={
        "email": "email",
        # An unsubscribe or a spam complaint withdraws e-mail consent.
        "consent_email": "CASE WHEN event_type IN ('unsubscribe', 'complaint') THEN FALSE END",
    },
    events={
        "email_open": EventKind("r.event_type = 'open'"),
        "email_click": EventKind("r.event_type = 'click'"),
    },
)
