"""Consent as a fact: every source's decisions, the newest winning, read by activation."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import warehouse
from resolution.consent import build_consents
from resolution.records import collect_records
from segments import EXAMPLES_DIR, activate, load_definitions, refresh_segments, report_html
from segments.destinations import AdAudienceDestination, FileDestination, RetryPolicy

# A segment ignoring consent, so that members who refused it are there to be withheld.
FIXTURE_SEGMENTS = Path(__file__).parent / "segments"

T = [datetime(2026, 1, d) for d in range(1, 10)]


def test_the_newest_decision_per_purpose_wins_across_every_source(tmp_path: Path) -> None:
    con = warehouse.connect(tmp_path / "w.duckdb")
    rows = {
        # Consented to e-mail and SMS at sign-up (T0); the contact was edited at T5, which
        # re-affirms nothing.
        "crm_contacts": [{"contact_id": "K1", "email": "ann@example.com", "phone": "+12025550101",
                          "consent_email": "true", "consent_sms": "true", "consent_ads": "true",
                          "created_at": T[0], "updated_at": T[5]}],
        # Unsubscribed at T2; a complaint withdraws too (T3, the same address).
        "email_events": [{"email_event_id": "E1", "email": "ann@example.com",
                          "event_type": "unsubscribe", "occurred_at": T[2]},
                         {"email_event_id": "E2", "email": "ann@example.com",
                          "event_type": "open", "occurred_at": T[4]}],
        # An identify call withdraws ad consent at T4.
        "events": [{"message_id": "M1", "type": "identify", "user_id": "u1",
                    "traits": '{"email": "ann@example.com", "consent_ads": false}',
                    "timestamp": T[4]}],
        # The consent table grants SMS again at T6, objects to profiling at T1, grants
        # profiling at T1 too (a tie: the withdrawal wins), and names an unknown purpose.
        "consents": [{"consent_id": "C1", "phone": "+12025550101", "purpose": "sms",
                      "granted": "true", "decided_at": T[6]},
                     {"consent_id": "C2", "user_id": "u1", "purpose": "profiling",
                      "granted": "false", "decided_at": T[1]},
                     {"consent_id": "C3", "user_id": "u1", "purpose": "profiling",
                      "granted": "true", "decided_at": T[1]},
                     {"consent_id": "C4", "user_id": "u1", "purpose": "telepathy",
                      "granted": "true", "decided_at": T[8]}],
    }  # fmt: skip
    for source, batch in rows.items():
        report = warehouse.append_rows(con, source=source, rows=batch, origin="test")
        assert report.rows_loaded == len(batch), report
    collect_records(con, phone_region="US")
    con.execute(
        "CREATE TEMP TABLE res_assignment AS SELECT uid, 'cus_1' AS customer_id FROM res_records"
    )
    assert build_consents(con) == 4
    got = con.execute(
        "SELECT purpose, granted, source, record_key, decided_at FROM customer_consents"
    ).fetchall()
    assert got == [
        ("ads", False, "events", "M1", T[4]),
        ("email", False, "email_events", "E1", T[2]),
        ("profiling", False, "consents", "C2", T[1]),
        ("sms", True, "consents", "C1", T[6]),
    ]
    con.close()


@pytest.fixture
def con(segment_world: Path):
    with duckdb.connect(str(segment_world)) as connection:
        # c01 has no usable e-mail address; c12 objected to profiling.
        connection.execute("UPDATE profiles SET email = '  ' WHERE customer_id = 'c01'")
        connection.execute(
            "UPDATE profiles SET consent_profiling = FALSE WHERE customer_id = 'c12'"
        )
        refresh_segments(
            connection, definitions=load_definitions(folders=[EXAMPLES_DIR, FIXTURE_SEGMENTS])
        )
        yield connection


def test_rows_without_consent_or_a_usable_identifier_are_withheld_and_counted(
    con, tmp_path: Path
) -> None:
    files = FileDestination(name="crm", consent="email", format="csv")
    ads = AdAudienceDestination(name="google_ads", platform="google")
    deliveries = activate(
        con, destinations=[files, ads], exports=tmp_path / "exports",
        retry=RetryPolicy(attempts=1), phone_region="GB", segments=["churn_over_90"],
    )  # fmt: skip
    by = {d.destination: d for d in deliveries}
    # churn_over_90 is c01, c02, c03, c12: c02 refused e-mail, c03 refused ads.
    assert pd.read_csv(by["crm"].target)["customer_id"].tolist() == ["c03"]
    assert by["crm"].withheld_by == {"no_consent": 1, "profiling_objection": 1, "no_contact": 1}
    # an ad audience takes a phone when the e-mail is blank: c01 goes, hashed
    assert by["google_ads"].withheld_by == {
        "no_consent": 1, "profiling_objection": 1, "no_contact": 0
    }  # fmt: skip
    assert by["google_ads"].rows == 2
    logged = con.execute(
        "SELECT destination, row_count, withheld_no_consent, withheld_profiling_objection,"
        " withheld_no_contact FROM activation_log ORDER BY destination"
    ).fetchall()
    assert logged == [("crm", 1, 1, 1, 1), ("google_ads", 2, 1, 1, 0)]
    html = report_html(con, downloads={}, lift=None)
    assert "Withheld: no contact identifier" in html and "Withheld: objected to profiling" in html


def test_an_acquisition_audience_suppresses_everyone_who_ever_bought(con) -> None:
    from segments import evaluate_segments

    definitions = load_definitions(folders=[EXAMPLES_DIR, FIXTURE_SEGMENTS])
    acquisition = next(d for d in definitions if d.name == "acquisition_prospects")
    assert acquisition.exclude.existing_customers
    without = acquisition.model_copy(update={"name": "unsuppressed", "exclude": None})
    members = evaluate_segments(con, definitions=[acquisition, without])
    # c10 and c12 browsed in the last 30 days with ad consent, but they have orders
    assert list(members["unsuppressed"]) == ["c10", "c11", "c12"]
    assert list(members["acquisition_prospects"]) == ["c11"]
