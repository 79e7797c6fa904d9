"""Support tickets: who wrote or called, about what, in what mood."""

from warehouse.schemas import Column as C
from warehouse.schemas import EventKind, Source

SOURCE = Source(
    name="support_tickets",
    key="ticket_id",
    columns=(
        C("ticket_id", "VARCHAR", True),
        C("email", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("topic", "VARCHAR"),
        C("sentiment", "VARCHAR"),
        C("created_at", "TIMESTAMP", True),
    ),
    time="created_at",
    kind="activity",
    records={"email": "email", "phone": "phone", "is_person": "TRUE"},
    events={"support_ticket": EventKind()},
    priority=3,
)
