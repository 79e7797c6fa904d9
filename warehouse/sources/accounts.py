"""Site and app accounts: a user id with the e-mail address it signed up with."""

from warehouse.schemas import Column as C
from warehouse.schemas import Source

SOURCE = Source(
    name="accounts",
    key="user_id",
    columns=(
        C("user_id", "VARCHAR", True),
        C("email", "VARCHAR", True),
        C("first_name", "VARCHAR"),
        C("last_name", "VARCHAR"),
        C("phone", "VARCHAR"),
        C("signup_at", "TIMESTAMP", True),
    ),
    time="signup_at",
    kind="identity",
    records={
        "email": "email",
        "phone": "phone",
        "user_id": "user_id",
        "first_name": "first_name",
        "last_name": "last_name",
        "is_person": "TRUE",
    },
    priority=2,
)
