"""Orders, online and in shops: the history every model needs (any export loads with a
column mapping; only a customer, a time and an amount are required)."""

from warehouse.schemas import Column as C
from warehouse.schemas import EventKind, Source

SOURCE = Source(
    name="orders",
    key="order_id",
    columns=(
        C("order_id", "VARCHAR", True),
        C("channel", "VARCHAR"),
        C("customer_id", "VARCHAR"),
        C("user_id", "VARCHAR"),
        C("loyalty_phone", "VARCHAR"),
        C("customer_name", "VARCHAR"),
        C("store_id", "VARCHAR"),
        C("ordered_at", "TIMESTAMP", True),
        C("amount", "DOUBLE", True, minimum=0.0),
        C("discount", "DOUBLE"),
        C("currency", "VARCHAR"),
        C("items", "JSON"),
    ),
    time="ordered_at",
    kind="activity",
    key_from=("customer_id", "user_id", "loyalty_phone", "customer_name", "ordered_at", "amount"),
    customer_columns=("customer_id", "user_id", "loyalty_phone", "customer_name"),
    records={
        # An export's own customer key identifies a customer as a user id does.
        "phone": "loyalty_phone",
        "user_id": "coalesce(user_id, customer_id)",
        "full_name": "customer_name",
        "store_id": "store_id",
        # A till slip with a name or a loyalty phone stands for a person; web orders' people
        # are their accounts.
        "is_person": "channel = 'store' "
        "AND (customer_name IS NOT NULL OR loyalty_phone IS NOT NULL)",
    },
    events={"purchase": EventKind()},
    priority=4,
)
