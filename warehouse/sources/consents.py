"""A consent table: one decision per row (a purpose granted or withdrawn, and when).

Rows come from a consent-management platform or a preference centre export. A row names
the person by e-mail, phone or user id, the purpose (`email`, `sms`, `push`, `ads`,
`profiling`) and whether it was granted; the newest decision per purpose wins
across every source (`resolution.consent`). A row with another purpose says nothing.
"""

from warehouse.schemas import CONSENT_PURPOSES, Source
from warehouse.schemas import Column as C

SOURCE = Source(
    name="consents",
    key="consent_id",
    columns=(
        C("consent_id", "VARCHAR", True),
        C("email", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("user_id", "VARCHAR"),
        C("purpose", "VARCHAR", True),
        C("granted", "BOOLEAN", True),
        C("decided_at", "TIMESTAMP", True),
    ),
    time="decided_at",
    kind="activity",
    customer_columns=("email", "phone", "user_id"),
    records={
        "email": "email",
        "phone": "phone",
        "user_id": "user_id",
        **{
            f"consent_{purpose}": f"CASE WHEN lower(purpose) = '{purpose}' THEN granted END"
            for purpose in CONSENT_PURPOSES
        },
    },
)
