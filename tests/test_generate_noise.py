"""Identity noise is present and measured, identifiers stay recoverable, both locales work."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import phonenumbers
import pyarrow.parquet as pq
import pytest

from pipelines.config import Settings
from warehouse.settings import GenerateSettings
from warehouse.synthetic import generate, source_file
from warehouse.synthetic.locales import LOCALES


def _read(sources: Path, truth: Path, source: str) -> list[dict]:
    """A CSV source's rows (all text), each with its true person's row from people.parquet."""
    people = {p["person_id"]: p for p in pq.read_table(truth / "people.parquet").to_pylist()}
    owner = {
        r["record_key"]: r["person_id"]
        for r in pq.read_table(truth / "record_truth.parquet").to_pylist()
        if r["source"] == source
    }
    path = source_file(sources, source)
    rows = duckdb.sql(f"SELECT * FROM read_csv('{path}', all_varchar = true)").to_arrow_table()
    key = rows.column_names[0]
    rows = rows.to_pylist()
    return [r | {"truth": people[owner[r[key]]]} for r in rows]


def _phone_pattern(phone: str) -> str:
    return re.sub(r"\d", "9", phone)


@pytest.fixture(scope="module")
def crm(small_universe: Settings) -> list[dict]:
    return _read(small_universe.paths.sources, small_universe.paths.truth, "crm_contacts")


def test_names_carry_typos_nicknames_and_case(crm: list[dict]) -> None:
    named = [c for c in crm if c["first_name"]]
    changed = [c for c in named if c["first_name"] != c["truth"]["first_name"]]
    nicknames = LOCALES["en"].nicknames
    nicknamed = [c for c in named if c["first_name"] in nicknames.get(c["truth"]["first_name"], ())]
    shouted = [c for c in named if c["first_name"].isupper() and len(c["first_name"]) > 1]
    assert 0.03 < len(changed) / len(named) < 0.25
    assert nicknamed and shouted
    same_name = {(c["truth"]["first_name"], c["truth"]["last_name"]) for c in crm}
    assert len(same_name) < len({c["truth"]["person_id"] for c in crm})  # namesakes exist


def test_emails_come_in_variants_and_junk(crm: list[dict]) -> None:
    emails = [c for c in crm if c["email"]]
    truth = [{c["truth"]["email"], c["truth"]["second_email"]} for c in emails]
    exact = sum(c["email"] in t for c, t in zip(emails, truth, strict=True))
    same_inbox = sum(c["email"].strip().lower() in t for c, t in zip(emails, truth, strict=True))
    plus = [c for c in emails if "+" in c["email"]]
    junk = [c for c in emails if c["email"] in LOCALES["en"].junk_emails]
    assert 0.75 < exact / len(emails) < 0.97
    assert same_inbox > exact and plus and junk


def test_phones_are_written_many_ways_but_parse_to_the_true_number(crm: list[dict]) -> None:
    phones = [c for c in crm if c["phone"] and c["phone"] not in LOCALES["en"].junk_phones]
    assert len({_phone_pattern(c["phone"]) for c in phones}) >= 6
    for c in phones:
        parsed = phonenumbers.parse(c["phone"], "US")
        number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert number in (c["truth"]["mobile"], c["truth"]["landline"])


def test_households_share_surnames_addresses_and_tablets(small_universe: Settings) -> None:
    people = pq.read_table(small_universe.paths.truth / "people.parquet")
    con = duckdb.connect()
    con.register("people", people)
    households = con.execute(
        "SELECT count(*) FROM (SELECT household_id FROM people GROUP BY 1 "
        "HAVING count(*) > 1 AND count(DISTINCT last_name) = 1)"
    ).fetchall()[0][0]
    events = source_file(small_universe.paths.sources, "events")
    truth = small_universe.paths.truth / "record_truth.parquet"
    shared = con.execute(
        f"""
        SELECT count(*) FROM (
            SELECT e.anonymousId FROM read_json('{events}') e
            JOIN '{truth}' t ON t.source = 'events' AND t.record_key = e.messageId::VARCHAR
            GROUP BY 1 HAVING count(DISTINCT t.person_id) > 1)
        """
    ).fetchall()[0][0]
    assert households > 10 and shared > 0


def test_shop_orders_use_phones_names_and_the_shops_own_number(small_universe: Settings) -> None:
    orders = pq.read_table(source_file(small_universe.paths.sources, "orders")).to_pylist()
    store = [o for o in orders if o["channel"] == "store"]
    by_phone: dict[str, int] = {}
    for o in store:
        if o["loyalty_phone"]:
            digits = re.sub(r"\D", "", o["loyalty_phone"])[-10:]
            by_phone[digits] = by_phone.get(digits, 0) + 1
    assert sum(o["customer_name"] is not None for o in store) > 0.2 * len(store)
    assert max(by_phone.values()) > 10  # a shop's own number, typed for many customers


def test_zero_noise_gives_clean_identifiers(tmp_path: Path) -> None:
    sources, truth = tmp_path / "sources", tmp_path / "truth"
    generate(settings=GenerateSettings(people=150, noise=0), sources_dir=sources, truth_dir=truth)
    crm = _read(sources, truth, "crm_contacts")
    assert all(c["first_name"] == c["truth"]["first_name"] for c in crm)
    assert all(c["email"] in (c["truth"]["email"], c["truth"]["second_email"]) for c in crm)
    assert {_phone_pattern(c["phone"]) for c in crm if c["phone"]} == {"+99999999999"}


def test_russian_locale(tmp_path: Path) -> None:
    sources, truth = tmp_path / "sources", tmp_path / "truth"
    generate(
        settings=GenerateSettings(people=200, locale="ru"), sources_dir=sources, truth_dir=truth
    )
    crm = _read(sources, truth, "crm_contacts")
    cyrillic = [c for c in crm if c["last_name"] and re.search("[а-яА-Я]", c["last_name"])]
    assert len(cyrillic) > 0.9 * len(crm)
    phones = [c for c in crm if c["phone"] and c["phone"] not in LOCALES["ru"].junk_phones]
    assert any(p["phone"].startswith("+7 (") for p in phones)
    assert any(re.fullmatch(r"8\d{10}", p["phone"]) for p in phones)
    for c in phones:
        number = phonenumbers.format_number(
            phonenumbers.parse(c["phone"], "RU"), phonenumbers.PhoneNumberFormat.E164
        )
        assert number in (c["truth"]["mobile"], c["truth"]["landline"])
    women = [c for c in crm if c["truth"]["gender"] == "F" and c["truth"]["last_name"][-1] != "а"]
    assert len(women) < 0.2 * sum(c["truth"]["gender"] == "F" for c in crm)  # -ова, -ина, ...
    orders = pq.read_table(source_file(sources, "orders"), columns=["currency"])
    assert set(orders["currency"].to_pylist()) == {"RUB"}
