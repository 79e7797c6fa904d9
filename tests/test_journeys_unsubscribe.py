"""The unsubscribe link, end to end: a journey emails a customer through a real SMTP server
(aiosmtpd); the link in the mail, followed through the BentoML service's ASGI app, withdraws
their email consent in the consent store; the next email is refused at send time, and the
journey ends on `consent_withdrawn`."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml
from pydantic import SecretStr
from starlette.testclient import TestClient
from test_journeys_channels import smtp_server  # noqa: F401  (fixture)

from pipelines.config import Settings
from pipelines.flows import journeys as journeys_flow
from pipelines.services import service_config
from segments.journeys import load_journeys, tick
from segments.journeys.channels import SmtpChannel
from segments.journeys.unsubscribe import sign_token
from segments.membership import record_run
from serving.service import build_service

API_KEY = "unsubscribe-test-key"
NOW = datetime(2026, 7, 1, 12)


def _journeys(folder: Path) -> list:
    """`offer`: an email now and another in a day, exits on consent withdrawn. `later`: an
    email after an hour, with no exit, so its message reaches the send-time consent check."""
    folder.mkdir()
    params = {"discount_code": "COMEBACK15", "discount_percent": 15}
    send = {"channel": "email", "template": "winback_offer", "params": params}
    for name, steps, exits in [
        (
            "offer",
            [
                {"id": "offer", "send": send},
                {"id": "pause", "wait": {"duration": "1d"}},
                {"id": "again", "send": send},
            ],
            ["consent_withdrawn"],
        ),
        ("later", [{"id": "pause", "wait": {"duration": "1h"}}, {"id": "mail", "send": send}], []),
    ]:
        journey = {
            "name": name,
            "description": "test",
            "trigger": {"segment": "unsubscribe_test"},
            "holdout": 0,
            "exit": exits,
            "steps": steps,
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(journey))
    return load_journeys(folders=[folder])


@pytest.fixture
def service(settings: Settings, segment_world: Path) -> Iterator[tuple[Settings, TestClient]]:
    settings = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"api_key": SecretStr(API_KEY)})}
    )
    app = build_service(config=service_config(settings)).to_asgi()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield settings, client


def test_the_link_withdraws_consent_the_next_send_is_refused_and_the_journey_ends(
    service: tuple[Settings, TestClient],
    smtp_server: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings, client = service
    mailbox, port = smtp_server
    journeys = _journeys(tmp_path / "journeys")
    runtime = journeys_flow.runtime(settings)
    runtime = type(runtime)(
        **{**runtime.__dict__, "channels": {**runtime.channels, "email": SmtpChannel(port=port)}}
    )
    with duckdb.connect(str(settings.paths.warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        members = {"unsubscribe_test": pd.Index(["c04", "c05"])}
        record_run(con, run_id="u1", evaluated_at=NOW, as_of=NOW, members=members)
        first = tick(con, journeys=journeys, runtime=runtime, now=NOW)
    assert first.delivered == 2 and len(mailbox.messages) == 2
    mail = next(m for m in mailbox.messages if m["To"] == "c04@example.com")
    url = re.search(r"http://127\.0\.0\.1:3000(/unsubscribe/\S+)", mail.get_content())[1]
    assert mail["List-Unsubscribe"] == f"<http://127.0.0.1:3000{url}>"
    token = url.rsplit("/", 1)[1]
    assert "example.com" not in base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()

    page = client.get(url)  # no API key: the signed link is enough; a GET changes nothing
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert client.post(url.replace(token[-4:], "AAAA")).status_code == 400
    forged = sign_token(secret="not-ours", customer_id="c05", channel="email", message="m")
    assert client.post(f"/unsubscribe/{forged}").status_code == 400
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        assert con.execute(
            "SELECT consent_email FROM profiles WHERE customer_id = 'c04'"
        ).fetchone() == (True,)
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert client.post(url).status_code == 200  # a second click changes nothing

    with duckdb.connect(str(settings.paths.warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        assert con.execute(
            "SELECT consent_email, consent_push FROM profiles WHERE customer_id = 'c04'"
        ).fetchone() == (False, True)  # only the email's channel is withdrawn
        kept = con.execute(
            "SELECT email, purpose, granted, _file FROM raw_consents"
        ).fetchall()  # the decision itself, which the next resolution reads
        assert kept == [("c04@example.com", "email", False, "unsubscribe")]
        later = tick(con, journeys=journeys, runtime=runtime, now=NOW + timedelta(hours=2))
        sends = con.execute(
            "SELECT journey, customer_id, status, last_error FROM journey_sends "
            "WHERE journey = 'later' ORDER BY customer_id"
        ).fetchall()
        ended = con.execute(
            "SELECT customer_id, status, exit_reason FROM journey_enrollments "
            "WHERE journey = 'offer' ORDER BY customer_id"
        ).fetchall()
    assert later.delivered == 1 and later.suppressed == 1 and len(mailbox.messages) == 3
    assert sends == [
        ("later", "c04", "suppressed", "no email consent at send time"),
        ("later", "c05", "delivered", None),
    ]
    assert mailbox.messages[-1]["To"] == "c05@example.com"
    assert ended == [("c04", "exited", "consent_withdrawn"), ("c05", "active", None)]
