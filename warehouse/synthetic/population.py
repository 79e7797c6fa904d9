"""Who the people are: households, names, birth dates, true emails, phones and addresses.

This is the clean truth about each person's identity; `noise` later garbles it
the way forms, cashiers and call centres do. Households share a surname (in the
Russian locale its gendered form), an address, a home IP and sometimes a
landline; some unrelated people share a common full name on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from faker import Faker
from faker.decode import unidecode

from warehouse.synthetic.locales import Locale

__all__ = ["People", "make_people"]

HOUSEHOLD_SIZES = np.array([1, 2, 3, 4])
HOUSEHOLD_SIZE_P = np.array([0.52, 0.29, 0.13, 0.06])
SHARED_SURNAME_P = 0.85
SAME_NAME_P = 0.015
SECOND_EMAIL_P = 0.25
MOBILE_P = 0.93
LANDLINE_P = 0.35
MOVE_P = 0.10


@dataclass(frozen=True)
class People:
    """The true identity of every person, one array element per person."""

    person_id: np.ndarray
    household: np.ndarray
    gender: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray
    birth_date: np.ndarray  # datetime64[D]
    email: np.ndarray
    email2: np.ndarray  # "" when none
    mobile: np.ndarray  # 10-digit national number, "" when none
    landline: np.ndarray  # the household's, "" when none
    address: np.ndarray
    city: np.ndarray
    postcode: np.ndarray
    moved_at: np.ndarray  # day offset into history, NaN when the person never moves
    new_address: np.ndarray
    new_city: np.ndarray
    new_postcode: np.ndarray
    home_ip: np.ndarray

    def __len__(self) -> int:
        return len(self.person_id)


def make_people(*, n: int, locale: Locale, history_days: int, rng: np.random.Generator) -> People:
    """Invent `n` people in households, with their true identifiers."""
    fake = Faker(locale.faker)
    fake.seed_instance(int(rng.integers(2**31)))
    household = _households(n, rng)
    n_households = int(household[-1]) + 1
    gender = np.where(rng.random(n) < 0.5, "F", "M")

    first = np.empty(n, dtype=object)
    for g, (names, p) in locale.first_names.items():
        mask = gender == g
        first[mask] = np.array(names, dtype=object)[rng.choice(len(names), mask.sum(), p=p)]
    last = _surnames(household, gender, locale, rng)
    _share_common_names(first, last, gender, household, rng)

    age_days = (np.clip(rng.normal(41, 14, n), 18, 88) * 365.25).astype("timedelta64[D]")
    birth_date = np.datetime64("2025-07-01") - age_days

    email, email2 = _emails(first, last, locale, rng)
    mobile = _phones(n, locale.mobile_prefixes, locale, rng)
    mobile[rng.random(n) > MOBILE_P] = ""
    landline = _phones(n_households, locale.landline_prefixes, locale, rng)
    landline[rng.random(n_households) > LANDLINE_P] = ""

    address, city, postcode = _addresses(n_households, fake, rng, ru=locale.code == "ru")
    new_address, new_city, new_postcode = _addresses(
        n_households, fake, rng, ru=locale.code == "ru"
    )
    moved_at = np.where(
        rng.random(n_households) < MOVE_P, rng.uniform(30, history_days - 30, n_households), np.nan
    )
    home_ip = _ips(n_households, rng)
    h = household
    return People(
        person_id=np.array([f"P{i + 1:07d}" for i in range(n)], dtype=object),
        household=household,
        gender=gender,
        first_name=first,
        last_name=last,
        birth_date=birth_date,
        email=email,
        email2=email2,
        mobile=mobile,
        landline=landline[h],
        address=address[h],
        city=city[h],
        postcode=postcode[h],
        moved_at=moved_at[h],
        new_address=new_address[h],
        new_city=new_city[h],
        new_postcode=new_postcode[h],
        home_ip=home_ip[h],
    )


def _households(n: int, rng: np.random.Generator) -> np.ndarray:
    sizes = rng.choice(HOUSEHOLD_SIZES, size=n, p=HOUSEHOLD_SIZE_P)
    return np.repeat(np.arange(n), sizes)[:n]


def _surnames(
    household: np.ndarray, gender: np.ndarray, locale: Locale, rng: np.random.Generator
) -> np.ndarray:
    male, female, p = locale.last_names
    n = len(household)
    family = rng.choice(len(male), int(household[-1]) + 1, p=p)[household]
    own = rng.choice(len(male), n, p=p)
    index = np.where(rng.random(n) < SHARED_SURNAME_P, family, own)
    return np.where(
        gender == "F", np.array(female, dtype=object)[index], np.array(male, dtype=object)[index]
    )


def _share_common_names(
    first: np.ndarray,
    last: np.ndarray,
    gender: np.ndarray,
    household: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Give a few people the full name of an unrelated person of the same gender."""
    n = len(first)
    for who in np.flatnonzero(rng.random(n) < SAME_NAME_P):
        other = int(rng.integers(n))
        if gender[other] == gender[who] and household[other] != household[who]:
            first[who], last[who] = first[other], last[other]


def _ascii(name: str) -> str:
    return re.sub(r"[^a-z]", "", unidecode(name).lower())


def _local_part(first: str, last: str, pattern: int, number: int) -> str:
    f, la = _ascii(first) or "user", _ascii(last) or "mail"
    return (
        f"{f}.{la}",
        f"{f}{la}",
        f"{f[0]}{la}",
        f"{f}_{la}",
        f"{la}.{f}",
        f"{f}{la}{number % 100:02d}",
        f"{f}.{la}{number % 1000}",
        f"{f}{number}",
    )[pattern]


def _emails(
    first: np.ndarray, last: np.ndarray, locale: Locale, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A unique primary email per person and, for some, a second one."""
    n = len(first)
    domains, p = locale.email_domains
    taken: set[str] = set()
    out = []
    for which in range(2):
        pattern = rng.choice(8, n, p=[0.24, 0.16, 0.14, 0.06, 0.06, 0.14, 0.1, 0.1])
        if which == 1:
            pattern = (pattern + 3) % 8
        number = rng.integers(1, 10_000, n)
        domain = np.array(domains, dtype=object)[rng.choice(len(domains), n, p=p)]
        emails = np.empty(n, dtype=object)
        for i in range(n):
            local = _local_part(first[i], last[i], int(pattern[i]), int(number[i]))
            address, extra = f"{local}@{domain[i]}", int(number[i])
            while address in taken:
                extra += 7
                address = f"{local}{extra % 10_000}@{domain[i]}"
            taken.add(address)
            emails[i] = address
        out.append(emails)
    primary, second = out
    second[rng.random(n) > SECOND_EMAIL_P] = ""
    return primary, second


def _phones(
    n: int, prefixes: tuple[str, ...], locale: Locale, rng: np.random.Generator
) -> np.ndarray:
    """Unique 10-digit national numbers that phonenumbers accepts as valid."""
    prefix = np.array(prefixes, dtype=object)[rng.integers(len(prefixes), size=n)]
    if locale.code == "en":  # no fictional 555 exchange, no N11 service codes, no leading 0/1
        exchanges = np.array([e for e in range(200, 1000) if e != 555 and e % 100 != 11])
    else:
        exchanges = np.arange(0, 1000)
    index = rng.choice(len(exchanges) * 10_000, size=n, replace=False)
    exchange, line = exchanges[index // 10_000], index % 10_000
    return np.array(
        [f"{a}{b:03d}{c:04d}" for a, b, c in zip(prefix, exchange, line, strict=True)], dtype=object
    )


def _addresses(
    n: int, fake: Faker, rng: np.random.Generator, *, ru: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Street address, city and postcode per household; cities by a rank-size law."""
    n_cities = int(np.clip(n // 300, 12, 250))
    cities = np.array([fake.city() for _ in range(n_cities)], dtype=object)
    zips = rng.choice(np.arange(100, 1000), n_cities, replace=False)
    streets = np.array([fake.street_name() for _ in range(max(50, n // 20))], dtype=object)
    city = rng.choice(n_cities, n, p=_rank_weights(n_cities))
    street = streets[rng.integers(len(streets), size=n)]
    number = rng.integers(1, 300 if ru else 9999, n)
    flat = np.where(rng.random(n) < (0.7 if ru else 0.3), rng.integers(1, 400, n), 0)
    if ru:
        address = [
            f"{s}, д. {b}" + (f", кв. {f}" if f else "")
            for s, b, f in zip(street, number, flat, strict=True)
        ]
        postcode = [
            f"{zips[c]}{d:03d}" for c, d in zip(city, rng.integers(0, 1000, n), strict=True)
        ]
    else:
        address = [
            f"{b} {s}" + (f" Apt. {f}" if f else "")
            for s, b, f in zip(street, number, flat, strict=True)
        ]
        postcode = [f"{zips[c]}{d:02d}" for c, d in zip(city, rng.integers(0, 100, n), strict=True)]
    return np.array(address, dtype=object), cities[city], np.array(postcode, dtype=object)


def _rank_weights(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** 0.8
    return w / w.sum()


def _ips(n: int, rng: np.random.Generator) -> np.ndarray:
    first = rng.choice(np.array([24, 37, 46, 50, 67, 73, 76, 81, 95, 98, 109, 176, 178, 185]), n)
    rest = rng.integers(0, 256, (n, 3))
    rest[:, 2] = np.clip(rest[:, 2], 1, 254)
    return np.array(
        [f"{a}.{b}.{c}.{d}" for a, (b, c, d) in zip(first, rest, strict=True)], dtype=object
    )
