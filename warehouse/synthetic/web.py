"""Web and app events in the Segment spec's message shape, from devices, sessions and logins.

Each person browses from one to four devices (web browsers and apps); some
households share a family tablet, so one `anonymousId` carries two people. A
visit is a session of page or screen views, product views, sometimes an
abandoned cart; every online order has its own session ending in `Order
Completed`. A device stays anonymous until its owner logs in: then an
`identify` call ties the `anonymousId` to the account's `userId` (sometimes
with an `alias` too) and later events carry both. Visits follow the person's
engagement and fade before a fading lapse. Vectorized end to end: the JSON is
assembled by DuckDB.
"""

from __future__ import annotations

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from warehouse.synthetic.behaviour import CATEGORIES, PEAK_SEASON, WEB_HOURS, poisson_times
from warehouse.synthetic.columns import uuids
from warehouse.synthetic.commerce import Catalogue, Orders
from warehouse.synthetic.records import Accounts
from warehouse.synthetic.universe import Universe

__all__ = ["make_events"]

# Event kinds, in their order within a session.
IDENTIFY, ALIAS, VIEW, PRODUCT_VIEWED, PRODUCT_ADDED, CHECKOUT_STARTED, ORDER_COMPLETED = range(7)
# Device kinds: web browsers, then apps.
DESKTOP, MOBILE_WEB, TABLET, IOS, ANDROID = range(5)
SHARED_TABLET_P = 0.25
LOGIN_P = 0.35
ALIAS_P = 0.05
AFTER_LAPSE_VISITS = 0.04

USER_AGENTS = {
    DESKTOP: (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/128.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0",
    ),
    MOBILE_WEB: (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/128.0.0.0 Mobile Safari/537.36",
    ),
    TABLET: (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    IOS: ("Shop/5.3.1 (iPhone; iOS 17.5)",),
    ANDROID: ("Shop/5.3.1 (Android 14; Pixel 8)",),
}
APP_DEVICE = {
    IOS: ("Apple", "iPhone15,2", "ios", "iOS", "17.5", "analytics-ios", "4.1.8"),
    ANDROID: ("Google", "Pixel 8", "android", "Android", "14", "analytics-android", "4.11.3"),
}
PAGES = (
    ("/", "Home"),
    *((f"/c/{c}", c.capitalize()) for c in CATEGORIES),
    ("/search", "Search"),
    ("/deals", "Deals"),
    ("/account", "Account"),
    ("/cart", "Cart"),
)


def make_events(
    u: Universe,
    *,
    accounts: Accounts,
    orders: Orders,
    catalogue: Catalogue,
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Register the `events` source (Segment camelCase columns plus `person_id`) as a view in
    `con`; its rows stream in time order, so writing it never holds the JSON in memory."""
    rng = u.rng("events")
    owner, device_of, devices = _devices(u, rng)
    session = _sessions(u, rng, orders, owner)
    session["device"] = device_of[session["usage"]]
    _logins(rng, session, accounts, orders, n_usages=len(owner))
    rows = _events(u, rng, session, orders, catalogue, devices["app"].to_numpy())
    order_products = con.sql(
        """
        SELECT to_json(list({'product_id': sku, 'sku': sku, 'category': category,
                             'price': unit_price, 'quantity': quantity} ORDER BY item))::VARCHAR
        FROM order_items GROUP BY order_row ORDER BY order_row
        """
    ).fetchnumpy()
    order_table = con.sql("SELECT order_id, amount, discount FROM orders_base ORDER BY order_row")
    order_columns = order_table.to_arrow_table()
    paths, titles = zip(*PAGES, strict=True)

    indices = {
        name: pa.array(np.maximum(rows[name], 0).astype(np.int32), mask=rows[name] < 0)
        for name in ("device", "account", "product", "page", "order", "person")
    }

    def lookup(index: str, values: object) -> pa.DictionaryArray:
        """Per-event values from a small table, as dictionary indices (nulls where index < 0)."""
        return pa.DictionaryArray.from_arrays(indices[index], pa.array(values))

    table = pa.table(
        {
            "message_id": uuids(rng, len(rows["kind"])),
            "kind": rows["kind"],
            "app": devices["app"].to_numpy()[rows["device"]],
            "anonymous_id": lookup("device", devices["anonymous_id"]),
            "context": lookup("device", devices["context"]),
            "user_id": lookup("account", accounts.user_id),
            "email": lookup("account", accounts.email),
            "phone": lookup("account", accounts.table["phone"]),
            "first_name": lookup("account", accounts.table["first_name"]),
            "last_name": lookup("account", accounts.table["last_name"]),
            "sku": lookup("product", catalogue.sku),
            "category": lookup("product", catalogue.category),
            "price": np.where(rows["product"] >= 0, catalogue.price[rows["product"]], np.nan),
            "quantity": rows["quantity"],
            "path": lookup("page", paths),
            "title": lookup("page", titles),
            "order_id": lookup("order", order_columns["order_id"]),
            "amount": lookup("order", order_columns["amount"]),
            "discount": lookup("order", order_columns["discount"]),
            "products": lookup("order", next(iter(order_products.values()))),
            "value": rows["value"],
            "ts": rows["ts"],
            "sent": rows["sent"],
            "person_id": lookup("person", u.people.person_id),
        }
    )
    con.register("event_rows", table)
    con.execute(_RENDER.replace("$currency", f"'{u.locale.currency}'"))


_RENDER = """
CREATE OR REPLACE VIEW events AS
SELECT
    CASE kind WHEN 0 THEN 'identify' WHEN 1 THEN 'alias'
              WHEN 2 THEN CASE WHEN app THEN 'screen' ELSE 'page' END
              ELSE 'track' END AS type,
    CASE kind WHEN 3 THEN 'Product Viewed' WHEN 4 THEN 'Product Added'
              WHEN 5 THEN 'Checkout Started' WHEN 6 THEN 'Order Completed' END AS event,
    message_id AS messageId,
    anonymous_id AS anonymousId,
    user_id AS userId,
    CASE WHEN kind = 1 THEN anonymous_id END AS previousId,
    CASE WHEN kind = 2 THEN title END AS name,
    strftime(epoch_ms(ts), '%Y-%m-%dT%H:%M:%S.%gZ') AS timestamp,
    strftime(epoch_ms(sent), '%Y-%m-%dT%H:%M:%S.%gZ') AS sentAt,
    CASE
        WHEN kind = 2 AND app THEN json_object()
        WHEN kind = 2 THEN json_object('path', path, 'title', title)
        WHEN kind IN (3, 4) THEN json_object('product_id', sku, 'sku', sku, 'category', category,
                                             'price', price, 'quantity', quantity,
                                             'currency', $currency)
        WHEN kind = 5 THEN json_object('order_id', order_id, 'value', value,
                                       'currency', $currency)
        WHEN kind = 6 THEN json_object('order_id', order_id, 'total', amount, 'revenue', amount,
                                       'discount', discount, 'currency', $currency,
                                       'products', products::JSON)
    END AS properties,
    CASE WHEN kind = 0 THEN json_object('email', email, 'phone', phone,
                                        'firstName', first_name, 'lastName', last_name)
    END AS traits,
    context::JSON AS context,
    person_id
FROM event_rows
"""


def _devices(u: Universe, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, pa.Table]:
    """Devices and their users: (person per usage, device per usage, device table).

    A usage is a (person, device) pair; a family tablet has two usages, one per person.
    Usages are sorted by person, a person's main device first.
    """
    p, n_devices = u.people, u.behaviour.n_devices
    owner = np.repeat(np.arange(u.n), n_devices)
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(n_devices) - n_devices, n_devices)
    kind = np.where(
        rank == 0,
        np.where(rng.random(len(owner)) < 0.45, DESKTOP, MOBILE_WEB),
        rng.choice(5, len(owner), p=[0.15, 0.25, 0.15, 0.25, 0.2]),
    )
    first = np.flatnonzero(np.r_[True, p.household[1:] != p.household[:-1]])
    first = first[first + 1 < u.n]
    sharing = first[
        (p.household[first + 1] == p.household[first]) & (rng.random(len(first)) < SHARED_TABLET_P)
    ]
    tablets = np.arange(len(owner), len(owner) + len(sharing))
    owner = np.concatenate([owner, sharing])
    kind = np.concatenate([kind, np.full(len(sharing), TABLET)])
    person = np.concatenate([owner, sharing + 1])
    device = np.concatenate([np.arange(len(owner)), tablets])
    by_person = np.argsort(person, kind="stable")

    n = len(owner)
    anonymous_id = uuids(rng, n)
    at_home = (kind == DESKTOP) | (kind == TABLET)
    mobile_ip = rng.integers(0, 256, (n, 4))
    contexts = []
    for i in range(n):
        k = int(kind[i])
        ua = USER_AGENTS[k][int(mobile_ip[i, 3]) % len(USER_AGENTS[k])]
        ip = p.home_ip[owner[i]] if at_home[i] else "{}.{}.{}.{}".format(85, *mobile_ip[i, 1:])
        contexts.append(_context(k, ua, ip))
    table = pa.table(
        {
            "device": np.arange(n),
            "anonymous_id": anonymous_id,
            "app": kind >= IOS,
            "context": contexts,
        }
    )
    return person[by_person], device[by_person], table


def _context(kind: int, user_agent: str, ip: str) -> str:
    if kind >= IOS:
        maker, model, dtype, os_name, os_version, library, version = APP_DEVICE[kind]
        context = {
            "app": {"name": "Shop", "version": "5.3.1", "build": "531"},
            "device": {"manufacturer": maker, "model": model, "type": dtype},
            "os": {"name": os_name, "version": os_version},
            "library": {"name": library, "version": version},
        }
    else:
        dtype = ("desktop", "mobile", "tablet")[kind]
        context = {
            "device": {"type": dtype},
            "library": {"name": "analytics.js", "version": "2.11.1"},
        }
    return orjson.dumps({"ip": ip, "userAgent": user_agent, **context}).decode()


def _sessions(
    u: Universe, rng: np.random.Generator, orders: Orders, usage_person: np.ndarray
) -> dict[str, np.ndarray]:
    """Browsing sessions from each person's visit process, plus one session per online order."""
    b, tl = u.behaviour, u.timeline
    who, t = poisson_times(
        rng,
        rate=(0.2 + 1.6 * b.engagement) / 30,
        start=np.maximum(b.acquired_at, 0),
        end=np.full(u.n, float(tl.days)),
        intensity=lambda o, x: tl.season(x) * b.activity(o, x, after_lapse=AFTER_LAPSE_VISITS),
        peak=PEAK_SEASON,
    )
    t = np.minimum(tl.at_hour(rng, t, WEB_HOURS), tl.days - 0.05)
    bought = np.flatnonzero(orders.online)
    who = np.concatenate([who, orders.person[bought]])
    t = np.concatenate([t, orders.t[bought]])
    order = np.concatenate([np.full(len(t) - len(bought), -1), bought])
    per_person = np.bincount(usage_person, minlength=u.n)
    first_usage = np.cumsum(per_person) - per_person
    usage = first_usage[who] + (rng.random(len(who)) ** 2 * per_person[who]).astype(int)
    return {"who": who, "t": t, "order": order, "usage": usage}


def _logins(
    rng: np.random.Generator,
    session: dict[str, np.ndarray],
    accounts: Accounts,
    orders: Orders,
    *,
    n_usages: int,
) -> None:
    """Who is logged in during each session, and where an identify (and alias) call happens."""
    who, t, order, usage = session["who"], session["t"], session["order"], session["usage"]
    n = len(t)
    account = np.where(
        order >= 0,
        orders.account[order],
        accounts.at(who, t, rng.random(n_usages)[usage]),
    )
    candidate = (account >= 0) & ((order >= 0) | (rng.random(n) < LOGIN_P))
    login = np.full(n_usages, np.inf)
    np.minimum.at(login, usage[candidate], t[candidate])
    account = np.where((account >= 0) & (t >= login[usage]), account, -1)
    by_usage = np.lexsort((t, usage))
    previous = np.full(n, -1)
    same = usage[by_usage][1:] == usage[by_usage][:-1]
    previous[by_usage[1:]] = np.where(same, account[by_usage][:-1], -1)
    session["account"] = account
    session["identify"] = (account >= 0) & (account != previous)
    session["alias"] = session["identify"] & (rng.random(n) < ALIAS_P)


def _events(
    u: Universe,
    rng: np.random.Generator,
    session: dict[str, np.ndarray],
    orders: Orders,
    catalogue: Catalogue,
    app: np.ndarray,
) -> dict[str, np.ndarray]:
    """Expand sessions into time-ordered events: numeric columns, one element per event."""
    who, order = session["who"], session["order"]
    n_sessions, purchase = len(who), session["order"] >= 0
    engagement = u.behaviour.engagement[who]
    items = orders.items
    item_order = items["order_row"].to_numpy()
    n_items = np.bincount(item_order, minlength=len(orders.person))[np.maximum(order, 0)]
    viewed = np.where(purchase, n_items, rng.poisson(0.6 + 1.6 * engagement))
    added = np.where(purchase, n_items, (viewed > 0) & (rng.random(n_sessions) < 0.15))
    counts = np.zeros((n_sessions, 7), dtype=np.int64)
    counts[:, IDENTIFY] = session["identify"]
    counts[:, ALIAS] = session["alias"]
    counts[:, VIEW] = 1 + rng.poisson(np.where(purchase, 0.5, 0.8 + 1.5 * engagement))
    counts[:, PRODUCT_VIEWED] = viewed
    counts[:, PRODUCT_ADDED] = added
    counts[:, CHECKOUT_STARTED] = purchase | ((added > 0) & (rng.random(n_sessions) < 0.35))
    counts[:, ORDER_COMPLETED] = purchase

    flat = counts.ravel()
    kind = np.repeat(np.tile(np.arange(7), n_sessions), flat)
    sess = np.repeat(np.repeat(np.arange(n_sessions), 7), flat)
    group_start = np.cumsum(flat) - flat
    rank = np.arange(len(kind)) - np.repeat(group_start, flat)
    n = len(kind)

    in_purchase = purchase[sess]
    is_item = (kind == PRODUCT_VIEWED) | (kind == PRODUCT_ADDED)
    item_start = np.searchsorted(item_order, np.arange(len(orders.person)))
    item = np.where(in_purchase & is_item, item_start[np.maximum(order[sess], 0)] + rank, 0)
    product = np.full(n, -1)
    product[in_purchase & is_item] = items["product"].to_numpy()[item[in_purchase & is_item]]
    browse_view = ~in_purchase & (kind == PRODUCT_VIEWED)
    people = who[sess[browse_view]]
    category = catalogue.choose_categories(rng, u.behaviour.category_pref[people])
    product[browse_view] = catalogue.sample(rng, category, u.behaviour.spend_level[people])
    browse_add = ~in_purchase & (kind == PRODUCT_ADDED)
    product[browse_add] = product[group_start[sess[browse_add] * 7 + PRODUCT_VIEWED]]
    quantity = np.where(in_purchase & is_item, items["quantity"].to_numpy()[item], 1)
    last_added = product[np.minimum(group_start[sess * 7 + PRODUCT_ADDED], n - 1)]
    value = np.where(
        kind == CHECKOUT_STARTED,
        np.where(
            in_purchase, orders.amount[np.maximum(order[sess], 0)], catalogue.price[last_added]
        ),
        np.nan,
    )
    page = np.where(kind == VIEW, rng.choice(len(PAGES), n, p=_page_weights()), -1)

    gap = np.where(kind <= ALIAS, 0.5, rng.exponential(45.0, n))
    elapsed = np.cumsum(gap)
    per_session = counts.sum(axis=1)
    session_first = np.cumsum(per_session) - per_session
    elapsed -= np.repeat(elapsed[session_first] - gap[session_first], per_session)
    duration = np.bincount(sess, weights=gap, minlength=n_sessions)
    start = np.where(purchase, session["t"] - duration / 86_400, session["t"])
    origin = (np.datetime64(u.timeline.start, "ms") - np.datetime64(0, "ms")).astype(np.int64)
    ts = origin + np.round(start[sess] * 86_400_000 + elapsed * 1000).astype(np.int64)
    device = session["device"][sess]
    sent = ts + np.where(app[device], rng.integers(200, 30_000, n), rng.integers(5, 800, n))
    o = np.argsort(ts, kind="stable")
    return {
        "kind": kind[o].astype(np.int8),
        "device": device[o],
        "person": who[sess][o],
        "account": session["account"][sess][o],
        "product": product[o],
        "quantity": quantity[o],
        "page": page[o],
        "order": np.where(kind >= CHECKOUT_STARTED, order[sess], -1)[o],
        "value": value[o],
        "ts": ts[o],
        "sent": sent[o],
    }


def _page_weights() -> np.ndarray:
    w = np.array([6.0] + [1.5] * len(CATEGORIES) + [2.0, 1.5, 1.0, 1.0])
    return w / w.sum()
