"""Activation: consent filtering, hashed ad audiences, files, and webhook retries over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import pytest
from pydantic import ValidationError

from segments import EXAMPLES_DIR, activate, load_definitions, refresh_segments
from segments.destinations import (
    KINDS,
    AdAudienceDestination,
    Consent,
    Destination,
    FileDestination,
    Parcel,
    RetryPolicy,
    Sent,
    WebhookDestination,
    register,
)
from segments.hashing import ad_email, ad_phone, hashed_identifiers, sha256_hex
from segments.settings import SegmentSettings

FAST_RETRY = RetryPolicy(attempts=3, backoff_seconds=0.01, max_backoff_seconds=0.05)

# SHA-256 of the normalized identifiers, computed independently (`printf %s ... | sha256sum`).
SHA_EMAIL = (
    "e9e256b0951f4ebadc8511aaddb0f9fd5b551b8273f5858c284214ff6227e6a7"  # anna.smith@example.com
)
SHA_PHONE_E164 = "20b18ac9de7b3aad174961827d8e451c410af9aedfd1d699927f4b29b81aa1fa"  # +447911123456
SHA_PHONE_DIGITS = (
    "40b5c38342a9c584ec707e8679b003f8c779c6aaa138c976ef94e049cc05208f"  # 447911123456
)

# A segment ignoring consent, so that members who refused it are there to be withheld.
FIXTURE_SEGMENTS = Path(__file__).parent / "segments"


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on 127.0.0.1 answering with scripted statuses, then 200."""

    def __init__(self, script: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = list(script)
        self.received: list[tuple[int, dict, dict]] = []  # (status answered, headers, body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = self.server.script.pop(0) if self.server.script else 200
        self.server.received.append((status, dict(self.headers), body))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"ok": false}' if status >= 400 else b'{"ok": true}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def con(segment_world: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(segment_world)) as connection:
        definitions = load_definitions(folders=[EXAMPLES_DIR, FIXTURE_SEGMENTS])
        refresh_segments(con=connection, definitions=definitions, run_id="r1")
        yield connection


def run(con, tmp_path: Path, *destinations) -> dict[tuple[str, str], object]:
    deliveries = activate(
        con, destinations=destinations, exports=tmp_path / "exports", retry=FAST_RETRY,
        phone_region="GB", segments=["churn_over_90", "cart_abandoners_3d"],
    )  # fmt: skip
    return {(d.destination, d.segment): d for d in deliveries}


def test_identifiers_are_normalized_and_hashed_like_the_ad_platforms_require() -> None:
    assert ad_email("  Anna.Smith@Example.COM ") == "anna.smith@example.com"
    assert sha256_hex(ad_email("  Anna.Smith@Example.COM ")) == SHA_EMAIL
    assert ad_phone("07911 123456", region="GB", platform="google") == "+447911123456"
    assert ad_phone("+44 7911 123456", region="US", platform="meta") == "447911123456"
    frame = pd.DataFrame({"email": [" Anna.Smith@Example.COM", "not-an-email", None],
                          "phone": ["07911 123456", None, "12"]})  # fmt: skip
    google = hashed_identifiers(frame, platform="google", region="GB")
    assert google.to_dict("records") == [{"Email": SHA_EMAIL, "Phone": SHA_PHONE_E164}]
    meta = hashed_identifiers(frame, platform="meta", region="GB")
    assert meta.to_dict("records") == [{"EMAIL": SHA_EMAIL, "PHONE": SHA_PHONE_DIGITS}]


def test_files_and_ad_audiences_hold_only_consented_profiles(con, tmp_path: Path) -> None:
    files = FileDestination(name="crm", consent="email", format="csv")
    ads = AdAudienceDestination(name="google_ads", platform="google")
    sent = run(con, tmp_path, files, ads)
    # churn_over_90 is c01, c02, c03, c12; c02 refused e-mail, c03 refused ads.
    csv = pd.read_csv(sent["crm", "churn_over_90"].target)
    assert csv.to_dict("list") == {
        "customer_id": ["c01", "c03", "c12"],
        "first_name": ["Namec01", "Namec03", "Namec12"],
        "email": ["c01@example.com", "c03@example.com", "c12@example.com"],
    }
    assert sent["crm", "churn_over_90"].withheld == 1
    audience_file = Path(sent["google_ads", "churn_over_90"].target)
    audience = pd.read_csv(audience_file)
    assert list(audience.columns) == ["Email", "Phone"]
    assert list(audience["Email"]) == [
        sha256_hex(f"{c}@example.com") for c in ("c01", "c02", "c12")
    ]
    assert "@" not in audience_file.read_text() and "+44" not in audience_file.read_text()
    log = con.execute(
        "SELECT destination, segment, row_count, withheld_no_consent, status FROM activation_log "
        "WHERE segment = 'churn_over_90' ORDER BY destination"
    ).fetchall()
    assert log == [
        ("crm", "churn_over_90", 3, 1, "sent"),
        ("google_ads", "churn_over_90", 3, 1, "sent"),
    ]


def test_webhook_retries_with_backoff_and_one_key_per_batch(con, tmp_path, receiver) -> None:
    receiver.script = [503, 503]  # the first two attempts fail, the third succeeds
    hook = WebhookDestination(
        name="esp", url=receiver.url, batch_size=2, mode="full", segments=["churn_over_90"]
    )
    delivery = run(con, tmp_path, hook)["esp", "churn_over_90"]
    assert delivery.status == "sent"
    assert [(b.batch, b.rows, b.attempts, b.status) for b in delivery.batches] == [
        (1, 2, 3, "sent"),
        (2, 1, 1, "sent"),
    ]
    statuses = [status for status, _, _ in receiver.received]
    assert statuses == [503, 503, 200, 200]
    keys = [headers["Idempotency-Key"] for _, headers, _ in receiver.received]
    assert keys[0] == keys[1] == keys[2] != keys[3]
    bodies = [body for status, _, body in receiver.received if status == 200]
    assert [m["customer_id"] for b in bodies for m in b["members"]] == ["c01", "c03", "c12"]
    assert bodies[0]["idempotency_key"] == keys[0] and bodies[0]["batches"] == 2
    logged = con.execute(
        "SELECT batch, attempts, status, http_status FROM activation_batches ORDER BY batch"
    ).fetchall()
    assert logged == [(1, 3, "sent", 200), (2, 1, "sent", 200)]


def test_a_failed_destination_does_not_stop_others_and_is_retried_next_run(
    con, tmp_path, receiver
) -> None:
    receiver.script = [503] * 3 + [400]
    hook = WebhookDestination(name="esp", url=receiver.url, segments=["cart_abandoners_3d"])
    files = FileDestination(name="crm", segments=["cart_abandoners_3d"])
    first = run(con, tmp_path, hook, files)
    assert first["esp", "cart_abandoners_3d"].status == "failed"
    assert "gave up after 3 attempts: HTTP 503" in first["esp", "cart_abandoners_3d"].error
    assert first["crm", "cart_abandoners_3d"].status == "sent"
    # A rejection (4xx) is not retried: one attempt, the reason logged.
    second = run(con, tmp_path, hook, files)
    assert second["esp", "cart_abandoners_3d"].status == "failed"
    assert second["esp", "cart_abandoners_3d"].batches[0].attempts == 1
    assert second["crm", "cart_abandoners_3d"].status == "up_to_date"
    # The endpoint is back: the next run sends what never went.
    third = run(con, tmp_path, hook, files)
    assert third["esp", "cart_abandoners_3d"].status == "sent"
    sent = receiver.received[-1][2]
    assert [(m["customer_id"], m["change"]) for m in sent["members"]] == [
        ("c05", "entered"),
        ("c08", "entered"),
    ]
    assert run(con, tmp_path, hook, files)["esp", "cart_abandoners_3d"].status == "up_to_date"
    errors = con.execute(
        "SELECT status, error FROM activation_log WHERE destination = 'esp' ORDER BY started_at"
    ).fetchall()
    assert [s for s, _ in errors] == ["failed", "failed", "sent"]
    assert "HTTP 400" in errors[1][1]


def test_changes_only_files_list_who_entered_and_exited(con, tmp_path: Path) -> None:
    changes = FileDestination(name="changes", mode="changes", format="parquet")
    first = run(con, tmp_path, changes)["changes", "cart_abandoners_3d"]
    assert pd.read_parquet(first.target)[["customer_id", "change"]].values.tolist() == [
        ["c05", "entered"],
        ["c08", "entered"],
    ]
    con.execute("INSERT INTO raw_orders VALUES ('o-new', 'online', '2026-06-30 12:00', 20.0)")
    con.execute("INSERT INTO identity_map VALUES ('orders', 'o-new', 'c05')")
    refresh_segments(
        con, definitions=load_definitions(folders=[EXAMPLES_DIR, FIXTURE_SEGMENTS]), run_id="r2"
    )
    second = run(con, tmp_path, changes)["changes", "cart_abandoners_3d"]
    assert second.target.endswith("cart_abandoners_3d_changes_r2.parquet")
    assert pd.read_parquet(second.target)[["customer_id", "change"]].values.tolist() == [
        ["c05", "exited"]
    ]


class JsonLinesDestination(Destination):
    """A kind declared outside the package: members as JSON Lines, one file per segment."""

    type: Literal["jsonl"] = "jsonl"
    consent: Consent = "sms"

    def send(self, rows: pd.DataFrame, *, parcel: Parcel) -> Sent:
        path = self.file_path(parcel, suffix="jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.to_json(path, orient="records", lines=True)
        return Sent(target=str(path))


@pytest.fixture
def jsonl_kind() -> Iterator[type[Destination]]:
    register(JsonLinesDestination)
    yield JsonLinesDestination
    del KINDS["jsonl"]


def test_a_destination_kind_is_registered_and_chosen_by_name_from_config(
    con, tmp_path: Path, jsonl_kind: type[Destination]
) -> None:
    config = SegmentSettings.model_validate(
        {"destinations": [{"type": "jsonl", "name": "lines", "segments": ["churn_over_90"]}]}
    )
    [lines] = config.destinations
    assert type(lines) is jsonl_kind and lines.consent == "sms"
    assert config.model_dump()["destinations"][0]["type"] == "jsonl"  # dumps as its kind
    sent = run(con, tmp_path, lines)
    assert set(sent) == {("lines", "churn_over_90")}
    members = pd.read_json(sent["lines", "churn_over_90"].target, lines=True)
    assert list(members.columns) == ["customer_id", "first_name", "phone"]  # SMS consent: phone
    assert list(members["customer_id"]) == ["c01", "c02", "c03", "c12"]
    with pytest.raises(ValidationError, match="unknown destination type 'fax'; known: file"):
        SegmentSettings.model_validate({"destinations": [{"type": "fax", "name": "old"}]})
