"""Email marketing: sends, opens, clicks and unsubscribes, keyed by the address on the list.

The list holds CRM contacts who consented (their address exactly as the CRM
has it, junk included) and account holders who opted in at signup. A weekly
newsletter plus extra promotions from Black Friday to Christmas go to a share
of the list each; opens and clicks follow engagement and fade with activity,
lapsed people rarely open and unsubscribe more. Nobody gets mail after
unsubscribing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from warehouse.synthetic.columns import arrow_table, sequential_ids
from warehouse.synthetic.records import Accounts, Contacts
from warehouse.synthetic.universe import Universe

__all__ = ["make_email_events"]

AUDIENCE_P = 0.3
ACCOUNT_OPT_IN_P = 0.4


def _campaigns(u: Universe) -> tuple[np.ndarray, np.ndarray]:
    """Campaign send days and ids: a weekly newsletter plus peak-season promotions."""
    day = np.arange(3, u.timeline.days, 7.0)
    promo = np.arange(1, u.timeline.days, 3.0)
    promo = promo[u.timeline.season(promo) > 1.4]
    day = np.concatenate([day, promo])
    kind = np.array(["newsletter"] * (len(day) - len(promo)) + ["promo"] * len(promo))
    order = np.argsort(day, kind="stable")
    day, kind = day[order], kind[order]
    dates = np.datetime64(u.timeline.start, "D") + day.astype("timedelta64[D]")
    ids = np.array(
        [f"cmp-{str(d).replace('-', '')}-{k}" for d, k in zip(dates, kind, strict=True)],
        dtype=object,
    )
    return day, ids


def make_email_events(u: Universe, *, contacts: Contacts, accounts: Accounts) -> pa.Table:
    """The `email_events` source table (with `person_id`)."""
    rng, b, tl = u.rng("email"), u.behaviour, u.timeline
    from_crm = contacts.consent_email & (contacts.email != None)  # noqa: E711
    opted = rng.random(len(accounts.person)) < ACCOUNT_OPT_IN_P
    person = np.concatenate([contacts.person[from_crm], accounts.person[opted]])
    address = np.concatenate([contacts.email[from_crm], accounts.email[opted]])
    address = np.array([a.strip() for a in address], dtype=object)
    since = np.concatenate([contacts.created[from_crm], accounts.signup[opted]])

    day, campaign = _campaigns(u)
    first = np.searchsorted(day, since)
    eligible = len(day) - first
    sub = np.repeat(np.arange(len(person)), eligible)
    camp = first[sub] + np.arange(len(sub)) - np.repeat(np.cumsum(eligible) - eligible, eligible)
    keep = rng.random(len(sub)) < AUDIENCE_P
    sub, camp = sub[keep], camp[keep]
    who = person[sub]
    sent = day[camp] + (10 + 2 * rng.random(len(sub))) / 24

    active = b.activity(who, sent, after_lapse=0.1)
    lapsed = sent >= b.lapse_at[who]
    unsubscribe = rng.random(len(sub)) < 0.002 + 0.02 * lapsed + 0.01 * (active < 1)
    # nothing is sent after a subscriber's first unsubscribe
    unsubscribed_before = np.cumsum(unsubscribe) - unsubscribe
    start_of_sub = np.r_[0, np.flatnonzero(sub[1:] != sub[:-1]) + 1]
    run = np.repeat(unsubscribed_before[start_of_sub], np.diff(np.r_[start_of_sub, len(sub)]))
    alive = unsubscribed_before == run
    sub, camp, who, sent, active, unsubscribe = (
        x[alive] for x in (sub, camp, who, sent, active, unsubscribe)
    )
    engagement = b.engagement[who]
    opened = rng.random(len(sub)) < (0.08 + 0.5 * engagement) * active
    open_at = sent + np.minimum(rng.exponential(8, len(sub)), 96) / 24
    clicked = opened & (rng.random(len(sub)) < (0.1 + 0.3 * engagement) * active)
    click_at = open_at + rng.exponential(5, len(sub)) / 1440
    unsubscribe_at = np.where(opened, open_at, sent + 0.1) + rng.exponential(2, len(sub)) / 1440

    kind = np.concatenate(
        [
            np.full(len(sub), "send"),
            np.full(opened.sum(), "open"),
            np.full(clicked.sum(), "click"),
            np.full(unsubscribe.sum(), "unsubscribe"),
        ]
    )
    pick = np.concatenate(
        [np.arange(len(sub)), *(np.flatnonzero(m) for m in (opened, clicked, unsubscribe))]
    )
    at = np.concatenate([sent, open_at[opened], click_at[clicked], unsubscribe_at[unsubscribe]])
    at = np.minimum(at, tl.days - 1e-4)
    order = np.lexsort((np.arange(len(at)), at))
    pick, kind, at = pick[order], kind[order], at[order]
    n = len(pick)
    return arrow_table(
        {
            "email_event_id": sequential_ids("ee", n, 10),
            "email": address[sub[pick]],
            "campaign_id": campaign[camp[pick]],
            "event_type": kind.astype(object),
            "occurred_at": tl.timestamps(at).astype("datetime64[s]"),
            "person_id": u.people.person_id[who[pick]],
        }
    )
