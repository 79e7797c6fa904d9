"""Real channels: email to a local aiosmtpd server, push to a local HTTP receiver; a server
that refuses, is down, answers 500 or hangs gives retries, then a dead letter with the
reason, never a crashed runner."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from test_journeys import T0, TEMPLATES, world  # noqa: F401  (fixture)

import warehouse
from segments.destinations.base import RetryPolicy
from segments.journeys import EXAMPLES_DIR, Runtime, load_journeys, tick
from segments.journeys.channels import PushChannel, SmtpChannel


class _Mailbox:
    """An aiosmtpd handler keeping every message; `refuse` rejects every recipient."""

    def __init__(self, *, refuse: bool = False) -> None:
        self.messages: list[email.message.Message] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Mailbox, int]]:
    mailbox, port = _Mailbox(), _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


class Receiver(ThreadingHTTPServer):
    """A push gateway on localhost: records each request; `status` answers, `delay` hangs."""

    def __init__(self, *, status: int = 200, delay: float = 0.0) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.status, self.delay = status, delay
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/push"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real gateway

    def setup(self) -> None:
        super().setup()  # no Nagle delay between the headers and the body
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.headers["Idempotency-Key"], body))
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def _runtime(base: Runtime, **channels: object) -> Runtime:
    retry = RetryPolicy(attempts=3, backoff_seconds=60, timeout_seconds=1)
    return Runtime(
        channels={**base.channels, **channels},
        templates=TEMPLATES,
        exports=base.exports,
        unsubscribe_secret=base.unsubscribe_secret,
        retry=retry,
    )


def _winback():
    """The win-back journey, everyone treated."""
    found = next(j for j in load_journeys(folders=[EXAMPLES_DIR]) if j.name == "churn_winback")
    return found.model_copy(update={"holdout": 0.0})


def _enter_winback(con, members: list[str]) -> None:
    import pandas as pd

    from segments.membership import record_run

    record_run(
        con, run_id="w1", evaluated_at=T0, as_of=T0, members={"at_risk_valuable": pd.Index(members)}
    )


def test_email_goes_over_smtp_with_its_template_unsubscribe_link_and_key(world, smtp_server):  # noqa: F811
    con, base, _ = world
    mailbox, port = smtp_server
    _enter_winback(con, ["c01", "c02", "c04", "p01", "p02", "p03"])
    runtime = _runtime(base, email=SmtpChannel(host="127.0.0.1", port=port))

    outcome = tick(con, journeys=[_winback()], runtime=runtime, now=T0)

    sent = dict(con.execute("SELECT customer_id, status FROM journey_sends").fetchall())
    assert sent.get("c02") in (None, "suppressed")  # c02 has no email consent
    delivered = sorted(c for c, s in sent.items() if s == "delivered")
    assert len(mailbox.messages) == len(delivered) == outcome.delivered > 0
    message = mailbox.messages[0]
    assert message["To"] in {f"{c}@example.com" for c in delivered}
    assert "15% off" in message["Subject"] and "COMEBACK15" in message.get_content()
    assert "http://127.0.0.1:3000/unsubscribe/" in message.get_content()
    assert message["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:3000/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    keys = {k for (k,) in con.execute("SELECT idempotency_key FROM journey_sends").fetchall()}
    assert message["X-Idempotency-Key"] in keys
    assert message["Message-ID"] == f"<{message['X-Idempotency-Key']}@cip>"


@pytest.mark.parametrize("trouble", ["refused", "down"])
def test_smtp_refusing_or_down_is_retried_then_dead_lettered(world, trouble) -> None:  # noqa: F811
    con, base, _ = world
    _enter_winback(con, ["c01", "p01"])
    if trouble == "refused":
        mailbox, port = _Mailbox(refuse=True), _free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
    else:
        port = _free_port()  # nothing listens there
    runtime = _runtime(base, email=SmtpChannel(host="127.0.0.1", port=port))
    try:
        first = tick(con, journeys=[_winback()], runtime=runtime, now=T0)
        later = [
            tick(con, journeys=[_winback()], runtime=runtime, now=T0 + timedelta(hours=h))
            for h in (1, 2)
        ]
    finally:
        if trouble == "refused":
            controller.stop()
    dead = con.execute("SELECT customer_id, attempts, reason FROM journey_dead_letters").fetchall()
    assert sorted(c for c, *_ in dead) == sorted(["c01", "p01"])
    if trouble == "refused":  # a 5xx is final: no retry
        assert first.dead == 2 and all(a == 1 and "550" in r for _, a, r in dead)
    else:
        assert first.retrying == 2 and later[0].retrying == 2 and later[1].dead == 2
        assert all(a == 3 and "SMTP 127.0.0.1" in r for _, a, r in dead)
    assert con.execute("SELECT DISTINCT status FROM journey_sends").fetchall() == [("dead",)]


@pytest.mark.parametrize(("status", "delay"), [(500, 0.0), (200, 3.0)])
def test_push_answering_500_or_hanging_is_retried_then_dead_lettered(world, status, delay):  # noqa: F811
    con, base, members = world
    receiver = Receiver(status=status, delay=delay)
    cart = load_journeys(folders=[EXAMPLES_DIR])[0].model_copy(update={"holdout": 0.0})
    one = [m for m in members if m.startswith("c0")][:2]
    con.execute("DELETE FROM segment_membership WHERE customer_id NOT IN (SELECT unnest(?))", [one])
    runtime = _runtime(base, push=PushChannel(url=receiver.url, timeout_seconds=0.5))
    try:
        outcomes = [
            tick(con, journeys=[cart], runtime=runtime, now=T0 + timedelta(hours=h))
            for h in range(3)
        ]
    finally:
        receiver.shutdown()
    assert [o.retrying for o in outcomes] == [2, 2, 0] and outcomes[2].dead == 2
    dead = con.execute("SELECT reason FROM journey_dead_letters").fetchall()
    expected = "HTTP 500" if status == 500 else "ReadTimeout"
    assert len(dead) == 2 and all(expected in reason for (reason,) in dead)
    keys = [k for k, _ in receiver.requests]
    assert len(keys) == 6 and len(set(keys)) == 2  # three tries each, with the same key
    body = receiver.requests[0][1]["message"]
    assert body["token"] in one and body["notification"]["title"] == "Still thinking it over?"
    assert body["data"]["idempotency_key"] == receiver.requests[0][0]


def test_push_delivered_once_to_a_healthy_gateway(world) -> None:  # noqa: F811
    con, base, members = world
    receiver = Receiver()
    cart = load_journeys(folders=[EXAMPLES_DIR])[0]
    runtime = _runtime(base, push=PushChannel(url=receiver.url))
    try:
        first = tick(con, journeys=[cart], runtime=runtime, now=T0)
        tick(con, journeys=[cart], runtime=runtime, now=T0 + timedelta(minutes=5))
    finally:
        receiver.shutdown()
    keys = [k for k, _ in receiver.requests]
    assert len(keys) == len(set(keys)) == first.delivered > 0


def test_push_asks_for_its_own_consent_from_every_source_to_the_send(world, tmp_path) -> None:  # noqa: F811
    """Push opt-ins come from the CRM's `consent_push`, `identify` traits and the consent
    table (purpose `push`); the newest wins, and only it allows a push: an SMS opt-in
    allows none."""
    from resolution.consent import build_consents
    from resolution.records import collect_records

    t = [datetime(2026, 1, d) for d in range(1, 6)]
    sources = warehouse.connect(tmp_path / "w.duckdb")
    rows = {
        "crm_contacts": [{"contact_id": "K1", "email": "ann@example.com", "consent_sms": "true",
                          "consent_push": "true", "created_at": t[0]},
                         {"contact_id": "K2", "email": "bob@example.com", "consent_sms": "true",
                          "created_at": t[0]}],
        "events": [{"message_id": "M1", "type": "identify", "user_id": "u1",
                    "traits": '{"email": "cy@example.com", "consent_push": true}',
                    "timestamp": t[1]}],
        "consents": [{"consent_id": "C1", "email": "ann@example.com", "purpose": "push",
                      "granted": "false", "decided_at": t[2]}],
    }  # fmt: skip
    for source, batch in rows.items():
        assert warehouse.append_rows(sources, source=source, rows=batch, origin="t").rows_loaded
    collect_records(sources, phone_region="US")
    sources.execute(
        "CREATE TEMP TABLE res_assignment AS SELECT uid, coalesce(email, 'cy@example.com') "
        "AS customer_id FROM res_records"
    )
    build_consents(sources)
    decided = sources.execute(
        "SELECT customer_id, purpose, granted, source FROM customer_consents "
        "WHERE purpose IN ('push', 'sms') ORDER BY ALL"
    ).fetchall()
    sources.close()
    assert decided == [
        ("ann@example.com", "push", False, "consents"),  # withdrawn after the CRM's opt-in
        ("ann@example.com", "sms", True, "crm_contacts"),
        ("bob@example.com", "sms", True, "crm_contacts"),  # SMS only: no push decision
        ("cy@example.com", "push", True, "events"),
    ]

    con, base, members = world
    cart = load_journeys(folders=[EXAMPLES_DIR])[0].model_copy(update={"holdout": 0.0})
    three = ["c04", "c05", "c06"]
    con.execute(
        "DELETE FROM segment_membership WHERE customer_id NOT IN (SELECT unnest(?))", [three]
    )
    # as resolution leaves them: c04 withdrew push, c05 decided nothing on it (SMS yes)
    con.execute("UPDATE profiles SET consent_push = FALSE WHERE customer_id = 'c04'")
    con.execute("UPDATE profiles SET consent_push = NULL WHERE customer_id = 'c05'")
    receiver = Receiver()
    try:
        outcome = tick(
            con, journeys=[cart], runtime=_runtime(base, push=PushChannel(url=receiver.url)), now=T0
        )
    finally:
        receiver.shutdown()
    sends = con.execute(
        "SELECT customer_id, status, last_error FROM journey_sends ORDER BY customer_id"
    ).fetchall()
    assert sends == [
        ("c04", "suppressed", "no push consent at send time"),
        ("c05", "suppressed", "no push consent at send time"),
        ("c06", "delivered", None),
    ]
    assert outcome.delivered == 1 and [b["message"]["token"] for _, b in receiver.requests] == [
        "c06"
    ]
