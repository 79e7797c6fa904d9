"""Every feature in one readable place: groups of named DuckDB SQL aggregates, and the services.

Each source of the catalog (`warehouse.sources`) is first linked to customers: a temporary
table `linked_<source>(customer_id, ts, ...)` per source, joined once per build through
`identity_map`, `ts` being the source's declared time and the further columns those
`LINKED_COLUMNS` names (what the groups read of it). A group reads its `base` rows from
them (one per order, event, email event, ticket or linked record, keyed by `customer_id`,
timed by `ts`, strictly before the snapshot's `as_of`) and aggregates them per customer.
In a feature's SQL, `as_of` is the snapshot's instant, `since_<n>d` the instant `n` days
before it (for every window, and 90 and 180), `{w}` a window length in days and
`{in_window}` the predicate "`ts` falls in the last `{w}` days"; a feature whose name holds
`{w}` is repeated for every configured window. In a base, `{linked_records}` stands for
every linked record of every source (`linked_records`). Snapshot SQL is assembled from
these definitions in `features.snapshots`; the Feast objects in `features.objects`.
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.sources import SOURCES
from warehouse.tables import PROFILES, feature_table

__all__ = [
    "GROUPS",
    "LINKED_COLUMNS",
    "SERVICES",
    "Feature",
    "FeatureGroup",
    "expand",
    "linked_records",
]


@dataclass(frozen=True)
class Feature:
    """One feature: a name, an aggregate over the group's base rows, a type and a meaning."""

    name: str
    sql: str
    dtype: str  # int | float | string | bool
    description: str


@dataclass(frozen=True)
class FeatureGroup:
    """A feature view: one snapshot table, the linked sources (or tables) it needs, its base
    query over them and its features."""

    name: str
    requires: tuple[str, ...]
    base: str
    features: tuple[Feature, ...]

    @property
    def table(self) -> str:
        return feature_table(self.name)


def expand(group: FeatureGroup, windows: tuple[int, ...]) -> list[Feature]:
    """The group's features with every `{w}` feature repeated per window, SQL made concrete."""
    out = []
    for feature in group.features:
        for w in windows if "{w}" in feature.name else (0,):
            in_window = f"ts >= since_{w}d"
            out.append(
                Feature(
                    name=feature.name.format(w=w),
                    sql=feature.sql.format(w=w, in_window=in_window),
                    dtype=feature.dtype,
                    description=feature.description.format(w=w),
                )
            )
    return out


F = Feature


# What the groups read of each source besides `customer_id` and `ts` (a source not named
# here is linked with those two only: the profile group still counts its records).
LINKED_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("order_id", "amount", "discount", "channel", "items"),
    "events": ("type", "event"),
    "email_events": ("event_type",),
    "support_tickets": ("sentiment",),
}


def linked_records() -> str:
    """Every identity record (a CRM contact, an account) with its time, and the first
    record of each activity source, of every customer: `(customer_id, source, ts,
    identity)` over the catalog's sources."""
    return " UNION ALL ".join(
        f"SELECT customer_id, '{s.name}' AS source, ts, true AS identity FROM linked_{s.name}"
        if s.kind == "identity"
        else f"SELECT customer_id, '{s.name}' AS source, min(ts) AS ts, false AS identity "
        f"FROM linked_{s.name} GROUP BY 1"
        for s in SOURCES.values()
    )


_DAYS_SINCE_LAST = "date_diff('day', max(ts), as_of)"
_AGE = "date_sub('year', any_value(date_of_birth), as_of)"

# Distinct counts are sums over the base rows before the snapshot: an order says whether
# it is the first of its calendar day (`opens_day`) and how many categories the customer
# bought in it for the first time (`new_categories`), a linked record whether it is the
# customer's first of its source (`opens_source`). Every engine sums cheaply; a DISTINCT
# among FILTERed aggregates makes Spark expand and sort every row.
ORDER = FeatureGroup(
    name="order",
    requires=("orders",),
    base="""
    SELECT customer_id, ts, amount, coalesce(discount, 0) > 0 AS discounted,
        channel = 'online' AS online,
        (epoch(ts) - epoch(lag(ts) OVER (PARTITION BY customer_id ORDER BY ts, order_id)))
            / 86400 AS gap_days,
        ts::DATE IS DISTINCT FROM
            lag(ts::DATE) OVER (PARTITION BY customer_id ORDER BY ts, order_id) AS opens_day,
        ts::DATE = min(ts::DATE) OVER (PARTITION BY customer_id) AS first_day,
        coalesce(firsts.categories, 0) AS new_categories
    FROM linked_orders
    LEFT JOIN (
        SELECT order_id, count(*) AS categories FROM (
            SELECT order_id, category, row_number() OVER (
                PARTITION BY customer_id, category ORDER BY ts, order_id) AS nth
            FROM (
                SELECT customer_id, ts, order_id,
                    unnest(CAST(json_extract_string(items, '$[*].category') AS VARCHAR[]))
                        AS category
                FROM linked_orders
            )
        ) WHERE nth = 1 AND category IS NOT NULL GROUP BY order_id
    ) AS firsts USING (order_id)
    """,
    features=(
        F("days_since_last_order", _DAYS_SINCE_LAST, "int", "Recency: days since the last order."),
        F("days_since_first_order", "date_diff('day', min(ts), as_of)", "int", "Order tenure."),
        F("orders_total", "count(*)", "int", "Orders ever."),
        F("orders_{w}d", "count(*) FILTER ({in_window})", "int", "Orders in the last {w} days."),
        F("spend_total", "sum(amount)", "float", "Money spent ever."),
        F(
            "spend_{w}d",
            "coalesce(sum(amount) FILTER ({in_window}), 0)",
            "float",
            "Money spent in the last {w} days.",
        ),
        F("avg_order_value", "avg(amount)", "float", "Average order value."),
        F(
            "purchase_days",
            "count(*) FILTER (opens_day)",
            "int",
            "Days with an order (BTYD frequency is this minus one).",
        ),
        F(
            "repeat_purchase_value",
            "coalesce((sum(amount) - coalesce(sum(amount) FILTER (first_day), 0))"
            " / nullif(count(*) FILTER (opens_day) - 1, 0), 0)",
            "float",
            "Mean spend of a repeat purchase day (after the first day): Gamma-Gamma's input.",
        ),
        F(
            "spend_trend_90d",
            "(coalesce(sum(amount) FILTER (ts >= since_90d), 0)"
            " - coalesce(sum(amount) FILTER (ts < since_90d AND ts >= since_180d), 0))"
            " / nullif(coalesce(sum(amount) FILTER (ts >= since_180d), 0), 0)",
            "float",
            "Spend of the last 90 days minus the 90 before, over both (-1 falling, 1 rising).",
        ),
        F(
            "days_between_orders",
            "avg(gap_days)",
            "float",
            "Mean days between consecutive orders.",
        ),
        F(
            "order_gap_cv",
            "stddev_samp(gap_days) / nullif(avg(gap_days), 0)",
            "float",
            "Regularity: coefficient of variation of the days between orders (0 = clockwork).",
        ),
        F(
            "discount_share",
            "avg(discounted::INTEGER)",
            "float",
            "Share of orders with a discount.",
        ),
        F(
            "category_breadth",
            "sum(new_categories)",
            "int",
            "Distinct product categories ever bought.",
        ),
        F("online_share", "avg(online::INTEGER)", "float", "Share of orders placed online."),
        F(
            "as_of_year_sin",
            "sin(2 * pi() * dayofyear(as_of) / 365.25)",
            "float",
            "Where the snapshot falls in the year (sine of its day of year; the same for "
            "everyone): with a year of cutoffs, a model learns the season from it.",
        ),
        F(
            "as_of_year_cos",
            "cos(2 * pi() * dayofyear(as_of) / 365.25)",
            "float",
            "Where the snapshot falls in the year (cosine of its day of year).",
        ),
    ),
)

WEB = FeatureGroup(
    name="web",
    requires=("events",),
    base="""
    SELECT customer_id, ts, type IN ('page', 'screen') AS page_view,
        event = 'Product Viewed' AS product_view, event = 'Product Added' AS add_to_cart,
        event = 'Checkout Started' AS checkout, event = 'Order Completed' AS order_completed,
        coalesce(epoch(ts) - epoch(lag(ts) OVER (PARTITION BY customer_id ORDER BY ts))
            > {session_gap_minutes} * 60, true) AS session_start
    FROM linked_events
    """,
    features=(
        F("days_since_last_visit", _DAYS_SINCE_LAST, "int", "Days since the last web/app event."),
        F(
            "sessions_{w}d",
            "count(*) FILTER (session_start AND {in_window})",
            "int",
            "Sessions (events less than the session gap apart) in the last {w} days.",
        ),
        F(
            "page_views_{w}d",
            "count(*) FILTER (page_view AND {in_window})",
            "int",
            "Page and screen views in the last {w} days.",
        ),
        F(
            "product_views_{w}d",
            "count(*) FILTER (product_view AND {in_window})",
            "int",
            "Product views in the last {w} days.",
        ),
        F(
            "add_to_carts_{w}d",
            "count(*) FILTER (add_to_cart AND {in_window})",
            "int",
            "Products added to the cart in the last {w} days.",
        ),
        F(
            "checkouts_{w}d",
            "count(*) FILTER (checkout AND {in_window})",
            "int",
            "Checkouts started in the last {w} days.",
        ),
        F(
            "abandoned_checkouts_{w}d",
            "greatest(count(*) FILTER (checkout AND {in_window})"
            " - count(*) FILTER (order_completed AND {in_window}), 0)",
            "int",
            "Checkouts started and not completed in the last {w} days.",
        ),
    ),
)

EMAIL = FeatureGroup(
    name="email",
    requires=("email_events",),
    base="SELECT customer_id, ts, event_type FROM linked_email_events",
    features=(
        F(
            "email_sends_{w}d",
            "count(*) FILTER (event_type = 'send' AND {in_window})",
            "int",
            "Emails sent in the last {w} days.",
        ),
        F(
            "email_open_rate_{w}d",
            "least(count(*) FILTER (event_type = 'open' AND {in_window})"
            " / nullif(count(*) FILTER (event_type = 'send' AND {in_window}), 0), 1)",
            "float",
            "Opens per email sent in the last {w} days (at most 1: an open can follow a send "
            "from before the window).",
        ),
        F(
            "email_click_rate_{w}d",
            "least(count(*) FILTER (event_type = 'click' AND {in_window})"
            " / nullif(count(*) FILTER (event_type = 'send' AND {in_window}), 0), 1)",
            "float",
            "Clicks per email sent in the last {w} days (at most 1).",
        ),
        F(
            "days_since_last_email_open",
            "date_diff('day', max(ts) FILTER (event_type = 'open'), as_of)",
            "int",
            "Days since the last email open.",
        ),
        F(
            "email_unsubscribed",
            "coalesce(bool_or(event_type = 'unsubscribe'), false)",
            "bool",
            "Unsubscribed from email.",
        ),
    ),
)

SUPPORT = FeatureGroup(
    name="support",
    requires=("support_tickets",),
    base="SELECT customer_id, ts, lower(sentiment) = 'negative' AS negative "
    "FROM linked_support_tickets",
    features=(
        F("tickets_{w}d", "count(*) FILTER ({in_window})", "int", "Tickets in the last {w} days."),
        F(
            "negative_tickets_{w}d",
            "count(*) FILTER (negative AND {in_window})",
            "int",
            "Tickets with negative sentiment in the last {w} days.",
        ),
        F("days_since_last_ticket", _DAYS_SINCE_LAST, "int", "Days since the last ticket."),
    ),
)

# Every linked record joined to the golden record. Age is computed at `as_of`; city and
# consent are the golden record's current values (resolution keeps no history of them).
PROFILE = FeatureGroup(
    name="profile",
    requires=(PROFILES,),
    base=f"""
    SELECT r.customer_id, r.ts, r.source, r.identity, p.city, p.date_of_birth,
        row_number() OVER (PARTITION BY r.customer_id, r.source ORDER BY r.ts) = 1
            AS opens_source,
        p.consent_email, p.consent_sms, p.consent_ads
    FROM ({{linked_records}}) r
    JOIN {PROFILES} p USING (customer_id)
    """,
    features=(
        F(
            "tenure_days",
            "date_diff('day', min(ts), as_of)",
            "int",
            "Days since the first record of any source.",
        ),
        F(
            "age_band",
            f"CASE WHEN {_AGE} < 20 THEN '<20' WHEN {_AGE} >= 70 THEN '70+'"
            f" ELSE CAST({_AGE} // 10 * 10 AS VARCHAR) || 's' END",
            "string",
            "Age band at the snapshot: <20, 20s, ..., 60s, 70+.",
        ),
        F("city", "any_value(city)", "string", "City of the golden record."),
        F("consent_email", "any_value(consent_email)", "bool", "Consents to email."),
        F("consent_sms", "any_value(consent_sms)", "bool", "Consents to SMS."),
        F("consent_ads", "any_value(consent_ads)", "bool", "Consents to ad audiences."),
        F(
            "linked_identities",
            "count(*) FILTER (identity)",
            "int",
            "CRM contacts and site accounts resolved into the customer.",
        ),
        F(
            "linked_sources",
            "count(*) FILTER (opens_source)",
            "int",
            "Sources the customer appears in.",
        ),
    ),
)

GROUPS: dict[str, FeatureGroup] = {g.name: g for g in (ORDER, WEB, EMAIL, SUPPORT, PROFILE)}

# Versioned feature services: a model names one and gets exactly these groups.
SERVICES: dict[str, tuple[str, ...]] = {
    "churn_v1": ("order", "web", "email", "support", "profile"),
    "ltv_v1": ("order", "web", "profile"),
}
