"""Identity-bearing sources: CRM contacts and e-commerce accounts.

CRM contacts come from the loyalty desk and the newsletter form: most people
have one, some have a duplicate (made after a move, or by a sloppy clerk with a
nickname or the second email). Accounts are the online shop's logins: one per
person who shops online, occasionally a second one under another email.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from faker.decode import unidecode

from warehouse.synthetic.columns import arrow_table, sequential_ids
from warehouse.synthetic.universe import Universe

__all__ = ["Accounts", "Contacts", "make_accounts", "make_contacts"]

MOVER_DUPLICATE_P = 0.6
DUPLICATE_P = 0.05
SECOND_ACCOUNT_P = 0.04


@dataclass(frozen=True)
class Contacts:
    """CRM contacts (the source table) and what the mailing list needs from them."""

    table: pa.Table
    person: np.ndarray
    email: np.ndarray  # as typed in the CRM, None when blank
    consent_email: np.ndarray
    created: np.ndarray  # float day


@dataclass(frozen=True)
class Accounts:
    """Shop accounts (the source table) and per-person lookups for orders and logins."""

    table: pa.Table
    person: np.ndarray
    user_id: np.ndarray
    email: np.ndarray
    signup: np.ndarray  # float day
    primary: np.ndarray  # per person: index of the first account, -1 when none
    second: np.ndarray  # per person: index of the second account, -1 when none

    def at(self, who: np.ndarray, t: np.ndarray, coin: np.ndarray) -> np.ndarray:
        """The account a person uses at time t (-1 when not signed up yet); with two accounts,
        `coin` < 0.5 picks the newer one."""
        first, second = self.primary[who], self.second[who]
        signup = np.append(self.signup, np.inf)
        use_second = (second >= 0) & (t >= signup[second]) & (coin < 0.5)
        return np.where(use_second, second, np.where(t >= signup[first], first, -1))


def make_contacts(u: Universe) -> Contacts:
    rng, noise, p, b = u.rng("crm"), u.noise("crm"), u.people, u.behaviour
    holders = np.flatnonzero(b.has_crm)
    created = b.acquired_at[holders] + rng.exponential(10, len(holders))
    moved = p.moved_at[holders]
    mover = (moved > created) & (rng.random(len(holders)) < MOVER_DUPLICATE_P)
    sloppy = rng.random(len(holders)) < DUPLICATE_P * u.settings.noise
    later = np.maximum(created, 0) + rng.uniform(0, u.timeline.days, len(holders))
    dup_created = np.where(mover, moved + rng.exponential(20, len(holders)), later)
    dup = (mover | sloppy) & (dup_created < u.timeline.days)
    who = np.concatenate([holders, holders[dup]])
    created = np.minimum(np.concatenate([created, dup_created[dup]]), u.timeline.days - 1)
    is_dup = np.arange(len(who)) >= len(holders)
    n = len(who)

    email = np.where(
        is_dup & (p.email2[who] != "") & (rng.random(n) < 0.5), p.email2[who], p.email[who]
    )
    email = noise.junk(
        noise.blank(noise.emails(email, variant=0.12), 0.08), u.locale.junk_emails, 0.01
    )
    phone = np.where(
        (p.landline[who] != "") & (rng.random(n) < 0.2), p.landline[who], p.mobile[who]
    )
    phone = noise.junk(noise.blank(noise.phones(phone), 0.15), u.locale.junk_phones, 0.01)
    after_move = created > p.moved_at[who]
    address = np.where(after_move, p.new_address[who], p.address[who])
    city = np.where(after_move, p.new_city[who], p.city[who])
    postcode = np.where(after_move, p.new_postcode[who], p.postcode[who])
    address_blank = noise.pick(n, 0.1)
    first = noise.first_names(p.first_name[who], nickname=0.08, typo=0.03, case=0.02)
    last = noise.names(p.last_name[who], typo=0.03, case=0.02)
    junk_name = noise.pick(n, 0.003)
    names = u.locale.junk_names
    pick = rng.integers(len(names), size=n)
    first = np.where(junk_name, [names[k][0] for k in pick], first)
    last = np.where(junk_name, [names[k][1] for k in pick], last)

    birth = p.birth_date[who].astype("datetime64[D]")
    swapped = _swap_day_month(birth)
    birth = np.where(noise.pick(n, 0.02), swapped, birth)
    created_ts = u.timeline.timestamps(created).astype("datetime64[s]")
    updated = created + rng.exponential(200, n)
    updated_ts = u.timeline.timestamps(np.minimum(updated, u.timeline.days - 0.01)).astype(
        "datetime64[s]"
    )
    consent_email = rng.random(n) < 0.7
    order = np.argsort(created, kind="stable")
    columns = {
        "contact_id": sequential_ids("CRM-", n, 7),
        "first_name": noise.blank(first, 0.01)[order],
        "last_name": noise.blank(last, 0.01)[order],
        "email": email[order],
        "phone": phone[order],
        "address": np.where(address_blank, None, noise.names(address, typo=0.02, case=0.01))[order],
        "city": np.where(address_blank, None, city)[order],
        "postcode": np.where(address_blank | noise.pick(n, 0.05), None, postcode)[order],
        "date_of_birth": np.where(noise.pick(n, 0.3), np.datetime64("NaT"), birth)[order],
        "consent_email": consent_email[order],
        "consent_sms": (rng.random(n) < 0.4)[order],
        "consent_ads": (rng.random(n) < 0.5)[order],
        # Push opt-ins come with the app (about a third of contacts), from their own
        # random stream.
        "consent_push": (u.rng("crm_push").random(n) < 0.35)[order],
        "created_at": created_ts[order],
        "updated_at": np.where(
            (updated < u.timeline.days) & (rng.random(n) < 0.5), updated_ts, np.datetime64("NaT")
        )[order],
        "person_id": p.person_id[who][order],
    }
    table = arrow_table(columns, {"date_of_birth": pa.date32()})
    return Contacts(
        table=table,
        person=who[order],
        email=columns["email"],
        consent_email=columns["consent_email"],
        created=created[order],
    )


def _swap_day_month(day: np.ndarray) -> np.ndarray:
    """A date with day and month swapped where that is a valid date (a common form slip)."""
    month = day.astype("datetime64[M]")
    d = (day - month).astype(int) + 1
    m = month.astype(int) % 12 + 1
    year = day.astype("datetime64[Y]")
    ok = d <= 12
    swapped = year + np.where(ok, d - 1, m - 1).astype("timedelta64[M]")
    return np.where(ok, swapped.astype("datetime64[D]") + (m - 1).astype("timedelta64[D]"), day)


def make_accounts(u: Universe) -> Accounts:
    rng, noise, p, b = u.rng("accounts"), u.noise("accounts"), u.people, u.behaviour
    holders = np.flatnonzero(b.has_account)
    quick = b.online_share[holders] > 0.5
    signup = b.acquired_at[holders] + np.where(
        quick, rng.exponential(1, len(holders)), rng.uniform(0, 300, len(holders))
    )
    holders, signup = holders[signup < u.timeline.days], signup[signup < u.timeline.days]
    second = rng.random(len(holders)) < SECOND_ACCOUNT_P * u.settings.noise
    second_signup = np.maximum(signup, 0) + rng.uniform(30, u.timeline.days, len(holders))
    second &= second_signup < u.timeline.days
    who = np.concatenate([holders, holders[second]])
    signup = np.concatenate([signup, second_signup[second]])
    is_second = np.arange(len(who)) >= len(holders)
    n = len(who)

    base = np.where(
        (p.email2[who] != "") & ((rng.random(n) < 0.15) | is_second), p.email2[who], p.email[who]
    )
    email = noise.emails(base, variant=0.08)
    clash = is_second & (email == base) & (base == p.email[who])
    email[clash] = [_plus(e, u.locale.plus_tags[0]) for e in email[clash]]
    first, last = p.first_name[who], p.last_name[who]
    if u.locale.code == "ru":  # some type their name in Latin letters
        latin = rng.random(n) < 0.2
        first = np.where(latin, [unidecode(x) for x in first], first)
        last = np.where(latin, [unidecode(x) for x in last], last)
    named = rng.random(n) < 0.55
    first = np.where(named, noise.first_names(first, nickname=0.1, typo=0.02, case=0.03), None)
    last = np.where(named, noise.names(last, typo=0.02, case=0.03), None)
    phone = np.where(rng.random(n) < 0.35, noise.phones(p.mobile[who]), None)

    order = np.argsort(signup, kind="stable")
    user_id = np.array(
        [f"u{x:08d}" for x in rng.choice(90_000_000, size=n, replace=False) + 10_000_000],
        dtype=object,
    )
    columns = {
        "user_id": user_id,
        "email": email[order],
        "first_name": first[order],
        "last_name": last[order],
        "phone": phone[order],
        "signup_at": u.timeline.timestamps(signup[order]).astype("datetime64[s]"),
        "person_id": p.person_id[who][order],
    }
    who, signup = who[order], signup[order]
    # accounts are sorted by signup, so a person's first index is their primary account
    primary = np.full(u.n, -1)
    second_of = np.full(u.n, -1)
    for k in range(n - 1, -1, -1):
        if primary[who[k]] >= 0:
            second_of[who[k]] = primary[who[k]]
        primary[who[k]] = k
    return Accounts(
        table=arrow_table(columns),
        person=who,
        user_id=user_id,
        email=columns["email"],
        signup=signup,
        primary=primary,
        second=second_of,
    )


def _plus(email: str, tag: str) -> str:
    local, domain = email.split("@")
    return f"{local}+{tag}@{domain}"
