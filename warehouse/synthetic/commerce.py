"""Orders, online and in shops, with their items and discounts, from each person's buying process.

A person buys at their purchase rate, scaled by the season and by their
activity (nothing after a lapse, less and less during a fading one); the first
order is the acquisition. Online orders carry the shop account's `user_id`;
shop orders carry what the cashier typed: a loyalty phone (sometimes the
shop's own number), a name, both or neither. Items follow the person's
category preferences and spend level; discount lovers use more discounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from warehouse.synthetic.behaviour import (
    CATEGORIES,
    PEAK_SEASON,
    SHOP_HOURS,
    WEB_HOURS,
    poisson_times,
)
from warehouse.synthetic.columns import arrow_table, sequential_ids
from warehouse.synthetic.noise import Noise
from warehouse.synthetic.records import Accounts
from warehouse.synthetic.universe import Universe

__all__ = ["Catalogue", "Orders", "make_catalogue", "make_orders"]

BASE_PRICE = dict(
    electronics=120, home=45, beauty=25, apparel=40, sports=55, toys=30, books=15, grocery=12
)
SKUS_PER_CATEGORY = 40
LOYALTY_PHONE_P = 0.65
NAME_P = 0.3
SHOP_PHONE_P = 0.03


@dataclass(frozen=True)
class Catalogue:
    """Products, grouped by category and sorted by price within each category."""

    sku: np.ndarray
    category: np.ndarray
    price: np.ndarray

    def sample(
        self, rng: np.random.Generator, category: np.ndarray, spend: np.ndarray
    ) -> np.ndarray:
        """Product indices: bigger spenders pick pricier products within the category."""
        level = np.clip(0.5 + 0.35 * np.log(spend) + rng.normal(0, 0.25, len(spend)), 0, 0.999)
        return category * SKUS_PER_CATEGORY + (level * SKUS_PER_CATEGORY).astype(int)

    def choose_categories(self, rng: np.random.Generator, pref: np.ndarray) -> np.ndarray:
        """One category per row of a (rows, categories) preference matrix."""
        cumulative = np.cumsum(pref, axis=1)
        return (
            (rng.random(len(pref))[:, None] > cumulative).sum(axis=1).clip(0, len(CATEGORIES) - 1)
        )


def make_catalogue(u: Universe) -> Catalogue:
    rng = u.rng("catalogue")
    sku, category, price = [], [], []
    for c, name in enumerate(CATEGORIES):
        prices = np.sort(rng.lognormal(np.log(BASE_PRICE[name]), 0.6, SKUS_PER_CATEGORY))
        sku += [f"{name[:3].upper()}-{c}{i:03d}" for i in range(SKUS_PER_CATEGORY)]
        category += [name] * SKUS_PER_CATEGORY
        price.append(prices * u.locale.price_scale)
    price = np.concatenate(price)
    price = np.round(price) - 0.01 if u.locale.code == "en" else np.round(price / 10) * 10 - 1
    return Catalogue(np.array(sku, dtype=object), np.array(category, dtype=object), price)


@dataclass(frozen=True)
class Orders:
    """One element per order, sorted by time, for the web events that lead to online orders."""

    person: np.ndarray
    t: np.ndarray
    online: np.ndarray
    account: np.ndarray  # index into Accounts, -1 for shop orders
    amount: np.ndarray
    items: pa.Table  # order_row, item, sku, category, quantity, unit_price, product


def make_orders(
    u: Universe, *, accounts: Accounts, catalogue: Catalogue, con: duckdb.DuckDBPyConnection
) -> Orders:
    """Draw every order, and register the `orders` source table (with `person_id`) in `con`."""
    rng, noise, b, p, tl = u.rng("orders"), u.noise("orders"), u.behaviour, u.people, u.timeline
    who, t = poisson_times(
        rng,
        rate=b.purchase_rate / 30,
        start=np.maximum(b.acquired_at, 0),
        end=np.full(u.n, float(tl.days)),
        intensity=lambda o, x: tl.season(x) * b.activity(o, x, after_lapse=0.0),
        peak=PEAK_SEASON,
    )
    first = np.flatnonzero((b.acquired_at >= 0) & (b.acquired_at < tl.days))
    who, t = np.concatenate([who, first]), np.concatenate([t, b.acquired_at[first]])
    account = accounts.at(who, t, rng.random(len(who)))
    online = (account >= 0) & (rng.random(len(who)) < b.online_share[who])
    t = np.where(
        online,
        tl.at_hour(rng, t, WEB_HOURS),
        np.minimum(tl.at_hour(rng, t, SHOP_HOURS), tl.days - 1e-3),
    )
    order = np.argsort(t, kind="stable")
    who, t, account, online = (
        who[order],
        t[order],
        np.where(online, account, -1)[order],
        online[order],
    )
    n = len(who)

    n_items = np.minimum(1 + rng.poisson(0.4 + 0.4 * b.spend_level[who]), 8)
    item_order = np.repeat(np.arange(n), n_items)
    item_person = who[item_order]
    category = catalogue.choose_categories(rng, b.category_pref[item_person])
    product = catalogue.sample(rng, category, b.spend_level[item_person])
    quantity = np.where(rng.random(len(product)) < 0.85, 1, rng.integers(2, 4, len(product)))
    subtotal = np.bincount(item_order, weights=catalogue.price[product] * quantity, minlength=n)
    in_season = tl.season(t) > 1.3
    discounted = rng.random(n) < np.minimum(b.discount_affinity[who] * (1 + in_season), 0.9)
    discount = np.round(subtotal * discounted * rng.choice([0.1, 0.15, 0.2, 0.25], n), 2)
    amount = np.round(subtotal - discount, 2)
    order_id = sequential_ids("O", n, 8, start=10_000_001)

    store, loyalty_phone, customer_name = _shop_identity(u, who, online, rng, noise)
    columns = {
        "order_id": order_id,
        "channel": np.where(online, "online", "store").astype(object),
        "user_id": np.where(online, np.append(accounts.user_id, None)[account], None),
        "loyalty_phone": loyalty_phone,
        "customer_name": customer_name,
        "store_id": store,
        "ordered_at": tl.timestamps(t).astype("datetime64[s]"),
        "amount": amount,
        "discount": discount,
        "currency": np.full(n, u.locale.currency, dtype=object),
        "order_row": np.arange(n),
        "person_id": p.person_id[who],
    }
    items = pa.table(
        {
            "order_row": item_order,
            "item": np.arange(len(product)),
            "sku": catalogue.sku[product],
            "category": catalogue.category[product],
            "quantity": quantity,
            "unit_price": catalogue.price[product],
            "product": product,
        }
    )
    con.register("orders_base", arrow_table(columns))
    con.register("order_items", items)
    con.execute(
        """
        CREATE OR REPLACE TABLE orders AS
        SELECT o.* EXCLUDE (order_row, person_id), i.items::VARCHAR AS items, o.person_id
        FROM orders_base o
        JOIN (SELECT order_row,
                     to_json(list({'sku': sku, 'category': category, 'quantity': quantity,
                                   'unit_price': unit_price} ORDER BY item)) AS items
              FROM order_items GROUP BY order_row) i USING (order_row)
        ORDER BY o.order_row
        """
    )
    return Orders(who, t, online, account, amount, items)


def _shop_identity(
    u: Universe, who: np.ndarray, online: np.ndarray, rng: np.random.Generator, noise: Noise
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Store, loyalty phone and name as typed at the till; None for online orders."""
    p, n = u.people, len(who)
    n_stores = int(np.clip(u.n // 800, 5, 60))
    store_phone = noise.phones(
        np.array([f"{u.locale.landline_prefixes[0]}{7_000_000 + s:07d}" for s in range(n_stores)])
    )
    home_store = p.household[who] % n_stores
    store = np.where(rng.random(n) < 0.8, home_store, rng.integers(n_stores, size=n))
    has_phone = (p.mobile[who] != "") & (rng.random(n) < LOYALTY_PHONE_P)
    phone = np.where(has_phone, noise.phones(p.mobile[who]), None)
    shop_phone = ~online & noise.pick(n, SHOP_PHONE_P)
    phone = np.where(shop_phone, store_phone[store], phone)
    named = (rng.random(n) < NAME_P) | ((phone == None) & (rng.random(n) < 0.5))  # noqa: E711
    name = np.where(named, _till_names(u, who, rng, noise), None)
    return (
        np.where(online, None, np.array([f"S{s + 1:03d}" for s in range(n_stores)])[store]),
        np.where(online, None, phone),
        np.where(online, None, name),
    )


def _till_names(u: Universe, who: np.ndarray, rng: np.random.Generator, noise: Noise) -> np.ndarray:
    """A customer's name the way a cashier writes it: full, initial, surname first."""
    first = noise.first_names(u.people.first_name[who], nickname=0.1, typo=0.04, case=0.05)
    last = noise.names(u.people.last_name[who], typo=0.04, case=0.05)
    style = rng.choice(4, len(who), p=[0.5, 0.2, 0.2, 0.1])
    return np.array(
        [
            (f"{f} {la}", f"{f[0]}. {la}", f"{la} {f}", la)[s]
            for f, la, s in zip(first, last, style, strict=True)
        ],
        dtype=object,
    )
