"""Support tickets: an email and/or a phone, a topic and a sentiment.

Some orders go wrong (delivery, refund); everyone asks the odd question; and
people heading for a fading lapse complain more, and more sourly, in their last
weeks. The contact details are typed by the customer: any of their addresses,
in any of the usual variants, or a phone in any format.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from warehouse.synthetic.behaviour import poisson_times
from warehouse.synthetic.columns import arrow_table, sequential_ids
from warehouse.synthetic.commerce import Orders
from warehouse.synthetic.universe import Universe

__all__ = ["make_support_tickets"]

ORDER_ISSUE_P = 0.04
QUESTION_RATE = 0.15 / 365
COMPLAINT_P = 0.35
SENTIMENTS = np.array(["negative", "neutral", "positive"], dtype=object)
ORDER_TOPICS = np.array(["delivery", "refund", "damaged item", "payment"], dtype=object)
OTHER_TOPICS = np.array(
    ["product question", "account access", "loyalty card", "other"], dtype=object
)


def make_support_tickets(u: Universe, *, orders: Orders) -> pa.Table:
    """The `support_tickets` source table (with `person_id`)."""
    rng, noise, b, p, tl = u.rng("support"), u.noise("support"), u.behaviour, u.people, u.timeline
    issue = rng.random(len(orders.person)) < ORDER_ISSUE_P
    issue_who = orders.person[issue]
    issue_at = orders.t[issue] + rng.uniform(1, 10, issue.sum())

    ask_who, ask_at = poisson_times(
        rng,
        rate=np.full(u.n, QUESTION_RATE),
        start=np.maximum(b.acquired_at, 0),
        end=np.minimum(np.nan_to_num(b.lapse_at, nan=tl.days), tl.days),
        intensity=lambda o, x: np.ones(len(x)),
        peak=1.0,
    )
    fading = np.flatnonzero((b.lapse_type == "fading") & (rng.random(u.n) < COMPLAINT_P))
    complain_at = b.lapse_at[fading] - rng.uniform(0, 1, len(fading)) * b.fade_days[fading]
    keep = complain_at >= 0
    fading, complain_at = fading[keep], complain_at[keep]

    who = np.concatenate([issue_who, ask_who, fading])
    at = np.concatenate([issue_at, ask_at, complain_at])
    context = np.repeat([0, 1, 2], [len(issue_who), len(ask_who), len(fading)])
    inside = at < tl.days
    who, at, context = who[inside], at[inside], context[inside]
    n = len(who)

    negative_p = np.array([0.35, 0.15, 0.7])[context]
    neutral_p = np.array([0.45, 0.6, 0.25])[context]
    r = rng.random(n)
    sentiment = SENTIMENTS[(r >= negative_p).astype(int) + (r >= negative_p + neutral_p)]
    topic = np.where(
        context == 1,
        OTHER_TOPICS[rng.integers(len(OTHER_TOPICS), size=n)],
        ORDER_TOPICS[rng.integers(len(ORDER_TOPICS), size=n)],
    )
    address = np.where((p.email2[who] != "") & (rng.random(n) < 0.3), p.email2[who], p.email[who])
    has_phone = p.mobile[who] != ""
    channel = rng.random(n)  # email only, phone only, or both
    with_email = ~has_phone | (channel < 0.8)
    with_phone = has_phone & (channel >= 0.55)
    email = np.where(with_email, noise.emails(address, variant=0.15), None)
    phone = np.where(with_phone, noise.phones(p.mobile[who]), None)

    order = np.argsort(at, kind="stable")
    return arrow_table(
        {
            "ticket_id": sequential_ids("T-", n, 7),
            "email": email[order],
            "phone": phone[order],
            "topic": topic[order],
            "sentiment": sentiment[order],
            "created_at": tl.timestamps(at[order]).astype("datetime64[s]"),
            "person_id": p.person_id[who[order]],
        }
    )
