"""Identity resolution on small hand-made raw tables: real DuckDB, real Splink, real MLflow."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import mlflow
import nbformat
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient
from typer.testing import CliRunner

import warehouse
from pipelines.cli import app
from pipelines.config import Settings
from resolution import (
    MatchModel,
    evaluate,
    explain_customer,
    explain_records,
    normalize,
    resolve,
    resolve_table,
)
from resolution.graph import mask
from resolution.records import collect_records

FIRST = ["anna", "james", "maria", "john", "olga", "peter", "linda", "ivan", "sara", "tom"]
LAST = ["smith", "jones", "brown", "ivanova", "petrov", "garcia", "miller", "davis", "moore"]
CITIES = ["Springfield", "Shelbyville", "Ogden"]
START = datetime(2025, 1, 1)
N_PEOPLE = 60


def person(i: int) -> dict:
    first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
    return {
        "first": first.title(),
        "last": last.title(),
        "email": f"{first}.{last}{i}@gmail.com",
        "phone": f"(415) {300 + i:03d}-{2000 + i:04d}",
        "dob": date(1960 + i % 40, 1 + i % 12, 1 + i % 28),
        "address": f"{10 + i} Oak Street",
        "city": CITIES[i % 3],
        "postcode": f"{94000 + i:05d}",
    }


def world(people: range = range(N_PEOPLE)) -> dict[str, list[dict]]:
    """Rows per raw table, and the truth: every person has a CRM contact, most an account,
    some a web session and a store order typed by a cashier."""
    rows: dict[str, list[dict]] = {name: [] for name in ("crm_contacts", "accounts", "events")}
    rows["orders"], rows["truth"] = [], []
    for i in people:
        p, t = person(i), START + timedelta(days=i)
        rows["crm_contacts"].append(
            {
                "contact_id": f"c{i}",
                "first_name": p["first"],
                "last_name": p["last"],
                "email": p["email"].upper() if i % 4 == 0 else p["email"],
                "phone": p["phone"],
                "address": p["address"],
                "city": p["city"],
                "postcode": p["postcode"],
                "date_of_birth": p["dob"],
                "consent_email": True,
                "consent_sms": i % 2 == 0,
                "consent_ads": False,
                "created_at": t,
                "updated_at": None,
            }
        )
        rows["truth"].append(("crm_contacts", f"c{i}", i))
        if i % 3:
            local, domain = p["email"].split("@")
            rows["accounts"].append(
                {
                    "user_id": f"u{i}",
                    "email": f"{local}+shop@{domain}",
                    "first_name": p["first"],
                    "last_name": p["last"],
                    "phone": "+1" + "".join(ch for ch in p["phone"] if ch.isdigit()),
                    "signup_at": t + timedelta(days=3),
                }
            )
            rows["truth"].append(("accounts", f"u{i}", i))
            for k, (kind, user) in enumerate([("page", None), ("identify", f"u{i}")]):
                rows["events"].append(
                    {
                        "message_id": f"m{i}-{k}",
                        "type": kind,
                        "anonymous_id": f"a{i}",
                        "user_id": user,
                        "timestamp": t + timedelta(days=4, minutes=k),
                    }
                )
                rows["truth"].append(("events", f"m{i}-{k}", i))
        if i % 2:
            typo = p["last"][:-1] if i % 5 == 0 else p["last"]
            rows["orders"].append(
                {
                    "order_id": f"o{i}",
                    "channel": "store",
                    "loyalty_phone": p["phone"] if i % 4 == 1 else None,
                    "customer_name": f"{p['first']} {typo}",
                    "ordered_at": t + timedelta(days=10),
                    "amount": 10.0 + i,
                }
            )
            rows["truth"].append(("orders", f"o{i}", i))
    return rows


def insert(con: duckdb.DuckDBPyConnection, source: str, rows: list[dict]) -> None:
    """Append rows to a raw table (lineage filled in, missing columns null)."""
    schema = warehouse.SOURCES[source]
    full = [
        {c: row.get(c) for c in schema.column_names}
        | {"_source": source, "_file": "test", "_row_number": n, "_loaded_at": START}
        for n, row in enumerate(rows, 1)
    ]
    if not full:
        return
    con.register("new_rows", pa.Table.from_pylist(full))
    con.execute(f"INSERT INTO {schema.table} BY NAME SELECT * FROM new_rows")
    con.unregister("new_rows")


def load_world(settings: Settings, rows: dict[str, list[dict]]) -> duckdb.DuckDBPyConnection:
    con = warehouse.connect(settings.paths.warehouse)
    for source, source_rows in rows.items():
        if source != "truth":
            insert(con, source, source_rows)
    return con


def write_truth(settings: Settings, rows: dict[str, list[dict]]) -> Path:
    path = settings.paths.truth / "record_truth.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    source, key, who = zip(*rows["truth"], strict=True)
    pq.write_table(pa.table({"source": source, "record_key": key, "person_id": who}), path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Splink model trained once on the hand-made world, shared by the tests."""
    folder = tmp_path_factory.mktemp("resolution-model")
    settings = Settings(data_dir=folder / "data")
    con = load_world(settings, world())
    resolve(con, settings=settings.resolution, model_dir=settings.paths.resolution)
    con.close()
    return settings.paths.resolution


@pytest.fixture
def trained(settings: Settings, model_dir: Path) -> Settings:
    """Settings whose data folder already holds the trained model."""
    shutil.copytree(model_dir, settings.paths.resolution)
    return settings


def partition(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(
        con.execute("SELECT source || ':' || record_key, customer_id FROM identity_map").fetchall()
    )


def customer_of(con: duckdb.DuckDBPyConnection, source: str, key: str) -> str:
    rows = con.execute(
        "SELECT customer_id FROM identity_map WHERE source = ? AND record_key = ?", [source, key]
    ).fetchall()
    return rows[0][0]


# -- normalizers ----------------------------------------------------------------------------


def test_email_normalizer_folds_case_plus_tags_and_gmail_dots() -> None:
    assert normalize.email("  John.Smith+Shop@GMail.com ") == "johnsmith@gmail.com"
    assert normalize.email("j.smith@googlemail.com") == "jsmith@gmail.com"
    assert normalize.email("Anna.Lee+news@outlook.com") == "anna.lee@outlook.com"
    assert normalize.email("anna.lee@example.org") == "anna.lee@example.org"
    for bad in (None, "", "n/a", "anna@", "@example.org", "two@@at.com", "+tag@gmail.com"):
        assert normalize.email(bad) is None


def test_phone_normalizer_reads_many_formats_into_e164() -> None:
    for raw in ("(415) 555-2671", "415-555-2671", "+1 415 555 2671", "4155552671"):
        assert normalize.phone(raw, "US") == "+14155552671"
    for raw in ("+7 (912) 345-67-89", "89123456789", "8 (912) 345-67-89"):
        assert normalize.phone(raw, "RU") == "+79123456789"
    for junk in (None, "", "n/a", "0000000000", "1234567890", "(999) 999-9999"):
        assert normalize.phone(junk, "US") is None


def test_name_and_place_normalizers() -> None:
    assert normalize.name(" Mary-Jane  O'Neil ") == "mary jane oneil"
    assert normalize.split_full_name("Anna Maria SMITH") == ("anna maria", "smith")
    assert normalize.split_full_name("Smith") == (None, "smith")
    assert normalize.split_full_name("  ") == (None, None)
    assert normalize.postcode(" sw1a 1aa ") == "SW1A1AA"
    assert normalize.text("  Saint-Petersburg,  Nevsky pr. ") == "saint-petersburg nevsky pr"


# -- the identity graph ---------------------------------------------------------------------


def test_full_run_links_sources_and_writes_every_table(trained: Settings) -> None:
    rows = world()
    con = load_world(trained, rows)
    result = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    assert not result.trained  # the saved model is reused
    n_rows = sum(len(v) for k, v in rows.items() if k != "truth")
    assert con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0] == n_rows
    # CRM contact, account, cookie events and phone-bearing store orders of one person
    ids = {customer_of(con, s, k) for s, k in [("crm_contacts", "c1"), ("accounts", "u1"),
                                               ("events", "m1-0"), ("orders", "o1")]}  # fmt: skip
    assert len(ids) == 1
    assert customer_of(con, "crm_contacts", "c2") not in ids
    looked_up = con.execute(
        "SELECT customer_id FROM customer_identifiers WHERE id_type = 'email' AND id_value = ?",
        [normalize.email("Anna.Smith0+x@gmail.com")],
    ).fetchall()
    assert looked_up == [(customer_of(con, "crm_contacts", "c0"),)]
    # Store orders with only a name may stay apart, but no two people are ever merged.
    name_only = sum(1 for o in rows["orders"] if o["loyalty_phone"] is None)
    profiles, known = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE is_known) FROM profiles"
    ).fetchall()[0]
    assert N_PEOPLE <= profiles <= N_PEOPLE + name_only and known == profiles
    people_per_customer = con.execute("""
        SELECT max(n) FROM (SELECT customer_id, count(DISTINCT regexp_extract(record_key,
            '[0-9]+')) AS n FROM identity_map GROUP BY 1)
    """).fetchall()[0][0]
    assert people_per_customer == 1
    assert result.figures["customer ids created"] == profiles
    con.close()


def test_explosion_guard_keeps_a_shared_phone_from_merging_people(trained: Settings) -> None:
    rows = world(range(20))
    shop_phone = "(415) 867-5309"
    for i in range(5):  # five different people give the shop's phone at the till
        rows["orders"].append(
            {
                "order_id": f"shared{i}",
                "channel": "store",
                "loyalty_phone": shop_phone,
                "customer_name": f"{FIRST[i].title()} {LAST[i].title()}",
                "ordered_at": START,
                "amount": 5.0,
            }
        )
    con = load_world(trained, rows)
    result = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    e164 = normalize.phone(shop_phone, "US")
    skipped = [s for s in result.skipped if s.id_type == "phone"]
    assert [(s.value_hash, s.n_records) for s in skipped] == [(mask(e164), 5)]
    assert e164 not in repr(result.skipped)
    shared = {customer_of(con, "orders", f"shared{i}") for i in range(5)}
    assert len(shared) == 5
    in_lookup = con.execute(
        "SELECT count(*) FROM customer_identifiers WHERE id_value = ?", [e164]
    ).fetchall()
    assert in_lookup == [(0,)]
    con.close()


def test_guard_takes_a_nickname_for_the_same_person_but_not_a_household(
    trained: Settings,
) -> None:
    rows = world(range(20))
    for key, first, account_first, last, email in (
        ("90", "Elizabeth", "Beth", "Barnes", "e.barnes@example.org"),  # one person
        ("91", "Daniel", "Lorraine", "Martinez", "home@example.org"),  # a couple's address
    ):
        rows["crm_contacts"].append(
            {"contact_id": f"c{key}", "first_name": first, "last_name": last, "email": email}
            | {"created_at": START}
        )
        rows["accounts"].append(
            {"user_id": f"u{key}", "first_name": account_first, "last_name": last}
            | {"email": email, "signup_at": START}
        )
    con = load_world(trained, rows)
    result = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    assert customer_of(con, "crm_contacts", "c90") == customer_of(con, "accounts", "u90")
    assert customer_of(con, "crm_contacts", "c91") != customer_of(con, "accounts", "u91")
    home = mask(normalize.email("home@example.org"))
    assert [(s.id_type, s.value_hash) for s in result.skipped] == [("email", home)]
    con.close()


# -- stable ids, merges and splits ----------------------------------------------------------


def test_ids_survive_a_rerun_with_added_and_changed_records(trained: Settings) -> None:
    con = load_world(trained, world(range(30)))
    resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    before = partition(con)
    insert(con, "crm_contacts", world(range(30, 33))["crm_contacts"])
    con.execute("UPDATE raw_crm_contacts SET city = 'Capital City' WHERE contact_id = 'c4'")
    result = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    after = partition(con)
    assert all(after[key] == customer for key, customer in before.items())
    assert result.figures["customer ids created"] == 3
    assert result.figures["customer ids merged"] == result.figures["customer ids split"] == 0
    con.close()


def test_merge_and_split_are_recorded_in_the_change_log(trained: Settings) -> None:
    rows = world(range(10))
    login = next(e for e in rows["events"] if e["message_id"] == "m1-1")
    rows["events"].remove(login)  # the visitor on cookie a1 has not logged in yet
    con = load_world(trained, rows)
    resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    known, visitor = customer_of(con, "crm_contacts", "c1"), customer_of(con, "events", "m1-0")
    assert known != visitor

    insert(con, "events", [login])  # the login ties the cookie to account u1
    merge_run = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    assert customer_of(con, "events", "m1-0") == customer_of(con, "crm_contacts", "c1") == known
    assert changes(con, merge_run.run_id) == [("merged", known, visitor)]

    con.execute("DELETE FROM raw_events WHERE message_id = 'm1-1'")  # erased: split again
    split_run = resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    split_off = customer_of(con, "events", "m1-0")
    assert customer_of(con, "crm_contacts", "c1") == known
    assert split_off not in (known, visitor)  # a merged id is never handed out again
    assert changes(con, split_run.run_id) == [("split", known, split_off)]
    con.close()


def changes(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple]:
    return con.execute(
        "SELECT change_type, customer_id, other_customer_id FROM customer_id_changes "
        "WHERE run_id = ? ORDER BY ALL",
        [run_id],
    ).fetchall()


# -- incremental ----------------------------------------------------------------------------


def test_incremental_run_equals_a_full_run_on_the_same_data(
    tmp_path: Path, model_dir: Path
) -> None:
    first, second = world(range(0, 40)), world(range(40, N_PEOPLE))
    for source in ("crm_contacts",):  # returning customers: new records of known people
        second[source] += [r | {"contact_id": r["contact_id"] + "b"} for r in first[source][:5]]
    results, maps = {}, {}
    for mode in ("incremental", "full"):
        settings = Settings(data_dir=tmp_path / mode)
        shutil.copytree(model_dir, settings.paths.resolution)
        con = load_world(settings, first)
        resolve(con, settings=settings.resolution, model_dir=settings.paths.resolution)
        for source, rows in second.items():
            if source != "truth":
                insert(con, source, rows)
        results[mode] = resolve(
            con,
            settings=settings.resolution,
            model_dir=settings.paths.resolution,
            incremental_run=mode == "incremental",
        )
        maps[mode] = partition(con)
        con.close()
    assert results["incremental"].mode == "incremental"
    assert results["incremental"].figures["splink new_records"] == sum(
        len(v) for k, v in second.items() if k != "truth"
    )
    assert results["full"].mode == "full"
    assert maps["incremental"] == maps["full"]
    assert maps["full"]["crm_contacts:c3b"] == maps["full"]["crm_contacts:c3"]


# -- golden record --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("source_priority", "Katherine"),
        ("most_recent", "Kat"),
        ("most_frequent", "Kate"),
        ("first_non_null", "Katie"),
    ],
)
def test_survivorship_rules_choose_the_golden_first_name(
    trained: Settings, rule: str, expected: str
) -> None:
    rows = world(range(12))
    base, p = rows["crm_contacts"][0], person(0)

    def at(days: float) -> datetime:
        return START + timedelta(days=days)

    rows["crm_contacts"] = [
        base | {"contact_id": "x1", "first_name": "Kate", "created_at": at(2)},
        base | {"contact_id": "x2", "first_name": "Kate", "created_at": at(3)},
        base | {"first_name": "Katherine", "created_at": at(3.5)},
    ]
    rows["accounts"] = [
        {"user_id": "k1", "email": base["email"], "first_name": "Katie", "signup_at": at(1)}
    ]
    rows["orders"] = [
        {"order_id": "kat", "channel": "store", "loyalty_phone": p["phone"],
         "customer_name": "Kat Smith", "ordered_at": at(4), "amount": 1.0}
    ]  # fmt: skip
    rows["events"] = []
    email = base["email"]
    con = load_world(trained, rows)
    config = trained.resolution.model_copy(
        update={"survivorship": {"first_name": rule}, "source_priority": ["crm_contacts"]}
    )
    resolve(con, settings=config, model_dir=trained.paths.resolution)
    (name, conflicts) = con.execute(
        "SELECT first_name, conflicts FROM profiles WHERE list_contains(emails, ?)",
        [normalize.email(email)],
    ).fetchall()[0]
    assert name == expected
    assert json.loads(conflicts)["first_name"] == ["kat", "kate", "katherine", "katie"]
    con.close()


# -- explain --------------------------------------------------------------------------------


def test_explain_two_records_and_a_customer(trained: Settings) -> None:
    con = load_world(trained, world())
    resolve(con, settings=trained.resolution, model_dir=trained.paths.resolution)
    model = MatchModel.load(trained.paths.resolution)
    threshold = trained.resolution.match_threshold
    pair = explain_records(
        con,
        left=("crm_contacts", "c1"),
        right=("accounts", "u1"),
        model=model,
        phone_region="US",
        threshold=threshold,
    )
    assert pair.same_customer
    assert {t for t, _ in pair.shared_identifiers} == {"email", "phone"}
    columns = [row["column_name"] for row in pair.waterfall]
    assert columns[0] == "Prior" and columns[-1] == "Final score"
    assert "first_name" in columns and pair.match_probability > 0.99
    assert "<html" in pair.chart_html.lower()
    other = explain_records(
        con, left=("crm_contacts", "c1"), right=("crm_contacts", "c2"), model=model,
        phone_region="US", threshold=threshold,
    )  # fmt: skip
    assert not other.same_customer and other.match_probability < 0.5 and not other.chain
    # Two records of one customer that share nothing: the chain of links that joined them.
    far = con.execute("""
        SELECT m.source, m.record_key FROM identity_map m
        WHERE m.customer_id = (SELECT customer_id FROM identity_map
                               WHERE source = 'crm_contacts' AND record_key = 'c1')
          AND m.source IN ('orders', 'events') ORDER BY m.source DESC LIMIT 1
    """).fetchall()[0]
    linked = explain_records(
        con, left=("crm_contacts", "c1"), right=far, model=model, phone_region="US",
        threshold=threshold,
    )  # fmt: skip
    assert linked.same_customer and linked.chain
    assert linked.chain[0][0] == "crm_contacts|c1" and linked.chain[-1][1] == "|".join(far)
    assert all(a != b for a, b, _ in linked.chain)
    assert all("@" not in how for _, _, how in linked.chain)  # identifiers by hash only
    customer = explain_customer(
        con,
        customer_id=customer_of(con, "crm_contacts", "c1"),
        model=model,
        phone_region="US",
        threshold=threshold,
    )
    assert sum(customer.records.values()) >= 4
    assert "email" in {t for t, _ in customer.identifiers}
    with pytest.raises(LookupError, match="no such record"):
        explain_records(
            con, left=("crm_contacts", "nope"), right=("accounts", "u1"), model=model,
            phone_region="US", threshold=threshold,
        )  # fmt: skip
    con.close()


# -- any person table -----------------------------------------------------------------------


def german_crm(people: range) -> pa.Table:
    rows = []
    for i in people:
        p = person(i)
        rows.append({"Kundennr": f"k{i}", "Vorname": p["first"], "Nachname": p["last"],
                     "E-Mail": p["email"], "Geburtstag": p["dob"].isoformat(), "Ort": p["city"],
                     "PLZ": p["postcode"], "Strasse": p["address"], "Segment": "A"})  # fmt: skip
        if i % 2 == 0:  # a duplicate typed again: new email, surname typo
            rows.append(rows[-1] | {"Kundennr": f"k{i}-dup", "E-Mail": None,
                                    "Nachname": p["last"][:-1] + "x"})  # fmt: skip
    return pa.Table.from_pylist(rows)


def test_column_mapping_resolves_any_person_table(settings: Settings) -> None:
    mapping = {"first_name": "Vorname", "surname": "Nachname", "email": "E-Mail",
               "date_of_birth": "Geburtstag", "city": "Ort", "postcode": "PLZ",
               "address": "Strasse"}  # fmt: skip
    result = resolve_table(
        german_crm(range(80)),
        mapping=mapping,
        settings=settings.resolution,
        id_column="Kundennr",
        extra_columns=["Segment"],
    )
    assignment = result.clusters
    clusters = dict(zip(assignment["record_id"].to_pylist(), assignment["cluster_id"].to_pylist(),
                        strict=True))  # fmt: skip
    assert len(clusters) == 120
    pairs = [(f"k{i}", f"k{i}-dup") for i in range(0, 80, 2)]
    found = sum(clusters[a] == clusters[b] for a, b in pairs)
    assert found >= 0.9 * len(pairs)
    assert len({clusters[f"k{i}"] for i in range(80)}) == 80  # nobody merged with another


# -- the command, evaluation and MLflow -----------------------------------------------------


def till(order_id: str, *, name: str | None = None, phone: str | None = None) -> dict:
    return {"order_id": order_id, "channel": "store", "customer_name": name,
            "loyalty_phone": phone, "ordered_at": START, "amount": 10.0}  # fmt: skip


def test_quality_counts_only_evidenced_pairs_as_findable(settings: Settings) -> None:
    """Evaluation of a hand-made identity map: a till slip bearing a name two people share,
    or a phone typed nowhere else, has no evidence, so its pairs are not findable; a false
    merge still costs precision wherever it happens."""
    crm = [("c1", "Anna", "Smith", "anna@x.org"), ("c2", "Olga", "Petrova", "olga@x.org")]
    crm.append(("c3", "John", "Brown", "john@x.org"))
    con = load_world(
        settings,
        {
            "crm_contacts": [
                {"contact_id": c, "first_name": f, "last_name": la, "email": e}
                | {"phone": "(415) 301-2001" if c == "c1" else None, "created_at": START}
                for c, f, la, e in crm
            ],
            "accounts": [{"user_id": "u1", "email": "ANNA@x.org", "signup_at": START}],
            "orders": [
                till("o1", phone="(415) 301-2001"),  # Anna, by her CRM phone
                till("o2", name="Anna Smith"),  # Anna, by a name no one else bears
                till("o3", phone="(415) 309-9999"),  # Anna, by a phone seen nowhere else
                till("o4", name="Olga Petrova"),  # Olga
                till("o5", name="John Brown"),  # another John Brown than c3
            ],
        },
    )
    people = {"c1": 1, "u1": 1, "o1": 1, "o2": 1, "o3": 1, "c2": 2, "o4": 2, "c3": 3, "o5": 4}
    predicted = {"c1": "A", "u1": "A", "o1": "A", "o2": "B", "o3": "C", "c2": "C", "o4": "C"}
    predicted |= {"c3": "D", "o5": "D"}
    source = {"c": "crm_contacts", "u": "accounts", "o": "orders"}
    truth = write_truth(settings, {"truth": [(source[k[0]], k, p) for k, p in people.items()]})
    con.execute("""CREATE TABLE identity_map (source VARCHAR, record_key VARCHAR,
                   customer_id VARCHAR, link_detail VARCHAR)""")
    con.executemany(
        "INSERT INTO identity_map VALUES (?, ?, ?, NULL)",
        [(source[k[0]], k, c) for k, c in predicted.items()],
    )
    collect_records(con, phone_region="US")

    (q,) = evaluate(con, truth_path=truth, scopes=["person records"])

    # 7 pairs made (A 3, C 3, D 1), 4 right; 11 true pairs (Anna's 5 records make 10).
    assert (q.records, q.people, q.customers) == (9, 4, 4)
    assert q.pairwise_precision == pytest.approx(4 / 7)
    assert q.pairwise_recall == pytest.approx(4 / 11)
    # Evidence ties c1, u1, o1 and o2 (6 pairs) and c2 with o4 (1); o3 and o5 stand alone.
    assert q.evidence_ceiling == pytest.approx(7 / 11)
    assert q.evidenced_recall == pytest.approx(4 / 7)
    assert q.evidenced_f1 == pytest.approx(4 / 7)


def test_quality_floor_on_the_generated_universe_logged_to_mlflow(
    universe_copy: Settings, monkeypatch
) -> None:
    """`cip resolve` on 400 generated people: measured against the truth, logged to MLflow,
    explained on the command line, and studied by the quality notebook."""
    monkeypatch.setenv("CIP_DATA_DIR", str(universe_copy.data_dir))
    result = CliRunner().invoke(app, ["resolve"])
    assert result.exit_code == 0, result.output
    assert "pairwise_f1" in result.output
    # the first run trains: what training chose is printed (blocking, prior, EM sessions)
    assert "blocking rules (budget" in result.output and "prior (probability" in result.output
    assert "EM blocked on" in result.output
    mlflow.set_tracking_uri(f"sqlite:///{universe_copy.paths.mlflow.resolve() / 'mlflow.db'}")
    run = mlflow.search_runs(experiment_names=["resolution"]).iloc[0]
    # A false merge leaks one person's data into another's profile: precision comes first.
    assert run["metrics.person_pairwise_precision"] >= 0.99
    assert run["metrics.all_pairwise_precision"] >= 0.99
    assert run["metrics.person_pairwise_recall"] >= 0.7
    assert run["metrics.all_pairwise_f1"] >= 0.89
    # Of the pairs that exact evidence connects, resolution finds nearly all.
    assert run["metrics.person_evidence_ceiling"] < 1
    assert run["metrics.person_evidenced_recall"] > run["metrics.person_pairwise_recall"]
    assert run["metrics.person_evidenced_f1"] >= 0.95
    artifacts = mlflow.MlflowClient().list_artifacts(run["run_id"], "splink")
    assert {Path(a.path).name for a in artifacts} >= {"model.json", "match_weights.html"}
    charts = mlflow.MlflowClient().list_artifacts(run["run_id"], "quality")
    assert [Path(a.path).name for a in charts] == ["pairs.png"]
    con = duckdb.connect(str(universe_copy.paths.warehouse), read_only=True)
    pair = con.execute("""
        SELECT list(source || ':' || record_key ORDER BY source, record_key)[1:2]
        FROM identity_map WHERE source IN ('crm_contacts', 'accounts')
        GROUP BY customer_id HAVING count(*) > 1 ORDER BY customer_id LIMIT 1
    """).fetchall()[0][0]
    con.close()
    explained = CliRunner().invoke(app, ["resolve", "explain", "-r", pair[0], "-r", pair[1]])
    assert explained.exit_code == 0, explained.output
    assert "same customer" in explained.output and "Final score" in explained.output
    assert "@" not in explained.output  # no raw identifiers on the terminal
    assert (universe_copy.paths.resolution / "explain.html").exists()
    run_quality_notebook()


def run_quality_notebook() -> None:
    """notebooks/resolution_quality.ipynb executes top to bottom (on CIP_DATA_DIR's data)."""
    notebook = nbformat.read(Path("notebooks/resolution_quality.ipynb"), as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = " ".join(
        str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in outputs
    )
    assert "pairwise_precision" in text and "Final score" in text
    # Section 5: the engine on FEBRL 1 with its defaults, scored against the labels.
    precision, recall = map(float, re.search(r"precision (\S+), recall (\S+)", text).groups())
    assert precision >= 0.99 and recall >= 0.99
    assert "EM on" in text and "prior" in text
