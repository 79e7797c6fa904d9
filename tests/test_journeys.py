"""Journeys: definitions checked with errors that say where, and the runner's state machine
on a real DuckDB warehouse (segment_world), sending to files."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from segments.fields import event_kinds
from segments.journeys import (
    EXAMPLES_DIR,
    TEMPLATES_DIR,
    JourneyError,
    Runtime,
    erase_customers,
    funnel,
    lift,
    load_journeys,
    load_templates,
    tick,
    validate_journeys,
)
from segments.journeys.channels import CHANNELS, FileChannel
from segments.journeys.definition import Journey
from segments.membership import record_run

T0 = datetime(2026, 7, 1, 10)
TEMPLATES = load_templates(folders=[TEMPLATES_DIR])
KNOWN = {
    "segments": {"cart_abandoners_3d", "at_risk_valuable"},
    "channels": set(CHANNELS),
    "templates": TEMPLATES,
    "events": set(event_kinds()),
    "score_fields": {"churn_probability", "churn_decile"},
}


def _journey(**changes: object) -> dict:
    data = yaml.safe_load((EXAMPLES_DIR / "cart_recovery.yaml").read_text())
    return data | changes


def _write(folder: Path, data: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{data['name']}.yaml").write_text(yaml.safe_dump(data))
    return folder


def test_the_shipped_journeys_are_valid() -> None:
    journeys = load_journeys(folders=[EXAMPLES_DIR])
    assert {j.name for j in journeys} == {"cart_recovery", "churn_winback"}
    validate_journeys(journeys, **KNOWN)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"trigger": {"segment": "nobody"}}, "trigger.segment: unknown segment 'nobody'"),
        (
            {"steps": [{"id": "a", "send": {"channel": "pigeon", "template": "cart_push"}}]},
            "step 'a' (#1): send.channel: unknown channel 'pigeon'",
        ),
        (
            {"steps": [{"id": "a", "send": {"channel": "push", "template": "nope"}}]},
            "step 'a' (#1): send.template: unknown template 'nope'",
        ),
        (
            {"steps": [{"id": "a", "send": {"channel": "email", "template": "cart_discount"}}]},
            "step 'a' (#1): send.params: template 'cart_discount' needs discount_code",
        ),
        (
            {"steps": [{"id": "a", "send": {"channel": "email", "template": "cart_push"}}]},
            "'cart_push' is a push template, not for email",
        ),
        (
            {"steps": [{"id": "w", "wait": {"until": "teleported", "timeout": "1d"}}]},
            "step 'w' (#1): wait.until: unknown event 'teleported'",
        ),
        ({"trigger": {"event": "teleported"}, "exit": []}, "trigger.event: unknown event"),
        (
            {"steps": [{"id": "b", "branch": {"if": {"score": "iq", "op": ">", "value": 1}}}]},
            "branch.if.score: unknown score 'iq'",
        ),
    ],
)
def test_references_to_what_does_not_exist_are_named(change: dict, expected: str) -> None:
    journey = Journey.model_validate(_journey(**change))
    with pytest.raises(JourneyError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        validate_journeys([journey], **KNOWN)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {
                "steps": [
                    {"id": "a", "send": {"channel": "push", "template": "cart_push"}},
                    {"id": "again", "branch": {"if": {"opened": True}, "then": "a", "else": "a"}},
                ]
            },
            "steps loop without a wait: a -> again -> a|steps loop without a wait: again -> a",
        ),
        (
            {"steps": [{"id": "w", "wait": {"until": "page_view"}}]},
            "step 'w' \\(#1\\): wait: Value error, waiting until 'page_view' needs a timeout",
        ),
        (
            {"steps": [{"id": "w", "wait": {"duration": "soon"}}]},
            "step 'w' \\(#1\\): wait.duration",
        ),
        (
            {
                "steps": [
                    {
                        "id": "x",
                        "send": {"channel": "push", "template": "cart_push"},
                        "wait": {"duration": "1d"},
                    }
                ]
            },
            "exactly one of send, wait, branch",
        ),
        (
            {"steps": [{"id": "b", "branch": {"if": {"opened": True}, "then": "nowhere"}}]},
            "branch goes to unknown step 'nowhere'",
        ),
        ({"holdout": 1.5}, "journey 'cart_recovery': holdout:"),
        (
            {"quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Mars/Olympus"}},
            "unknown time zone",
        ),
    ],
)
def test_malformed_journeys_say_which_journey_step_and_field(
    tmp_path: Path, change: dict, expected: str
) -> None:
    folder = _write(tmp_path / "journeys", _journey(**change))
    with pytest.raises(JourneyError, match=expected) as raised:
        load_journeys(folders=[folder])
    assert "cart_recovery.yaml: journey 'cart_recovery'" in str(raised.value)


def test_a_loop_through_a_wait_is_allowed() -> None:
    steps = [
        {"id": "a", "send": {"channel": "push", "template": "cart_push"}},
        {"id": "w", "wait": {"duration": "2d"}},
        {"id": "again", "branch": {"if": {"purchased": True}, "then": "end", "else": "a"}},
    ]
    Journey.model_validate(_journey(steps=steps))


# --- the runner ---------------------------------------------------------------------------


@pytest.fixture
def world(segment_world: Path, tmp_path: Path):
    """segment_world's warehouse with the cart segment entered at T0 by 40 customers."""
    con = duckdb.connect(str(segment_world))
    con.execute("SET TimeZone = 'UTC'")
    members = [f"p{i:02d}" for i in range(1, 34)] + [
        "c01",
        "c02",
        "c03",
        "c04",
        "c05",
        "c06",
        "c07",
    ]
    record_run(
        con,
        run_id="r1",
        evaluated_at=T0,
        as_of=T0,
        members={"cart_abandoners_3d": pd.Index(members)},
    )
    runtime = Runtime(
        channels={c: FileChannel() for c in CHANNELS},
        templates=TEMPLATES,
        exports=tmp_path / "exports",
        unsubscribe_secret="journeys-test-secret",
    )
    yield con, runtime, members
    con.close()


def _add_events(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, str | None, datetime]]):
    """Segment events (customer, type, event name, time), keyed through identity_map."""
    start = con.execute("SELECT count(*) FROM raw_events").fetchone()[0]
    for i, (customer, kind, name, at) in enumerate(rows, start=start):
        con.execute(
            "INSERT INTO raw_events (message_id, type, event, timestamp, properties) "
            "VALUES (?, ?, ?, ?, '{}')",
            [f"j{i}", kind, name, at],
        )
        con.execute("INSERT INTO identity_map VALUES ('events', ?, ?)", [f"j{i}", customer])


def _states(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    return {
        c: (g, s, st, r)
        for c, g, s, st, r in con.execute(
            "SELECT customer_id, grp, step, status, exit_reason FROM journey_enrollments"
        ).fetchall()
    }


def test_cart_sequence_push_now_email_after_a_silent_day_stop_on_purchase(world) -> None:
    con, runtime, members = world
    cart = load_journeys(folders=[EXAMPLES_DIR])[0]
    assert cart.name == "cart_recovery"

    first = tick(con, journeys=[cart], runtime=runtime, now=T0)

    states = _states(con)
    assert set(states) == set(members) and first.entered == len(members)
    holdout = {c for c, (g, *_) in states.items() if g == "holdout"}
    treated = set(members) - holdout
    assert 0 < len(holdout) < len(members) / 3  # 10% share, stable hash
    assert all(states[c][1:3] == ("wait_for_reaction", "active") for c in treated)
    assert all(states[c][1:3] == (None, "holdout") for c in holdout)
    pushes = sorted((runtime.exports / "journeys" / "push").glob("*.json"))
    assert len(pushes) == first.delivered == len(treated)  # push now, holdout gets nothing
    message = json.loads(pushes[0].read_text())
    assert message["content"]["title"] == "Still thinking it over?"
    assert message["to"] in treated

    # Within the day: one came back to the site, one bought, one lost email consent.
    back, buyer, unconsented = sorted(treated - {"c02"})[:3]
    _add_events(
        con,
        [
            (back, "page", None, T0 + timedelta(hours=3)),
            (buyer, "track", "Order Completed", T0 + timedelta(hours=5)),
        ],
    )
    con.execute("UPDATE profiles SET consent_email = FALSE WHERE customer_id = ?", [unconsented])
    tick(con, journeys=[cart], runtime=runtime, now=T0 + timedelta(hours=6))
    states = _states(con)
    assert states[back][1:3] == ("end", "done")
    assert states[buyer][2:] == ("exited", "purchase")
    assert states[sorted(treated - {back, buyer, unconsented})[0]][1] == "wait_for_reaction"

    # A day later the silent ones get the email with the discount; nobody gets it twice.
    later = T0 + timedelta(days=1, hours=1)
    for _ in range(2):
        tick(con, journeys=[cart], runtime=runtime, now=later)
    emails = list((runtime.exports / "journeys" / "email").glob("*.json"))
    sends = con.execute(
        "SELECT customer_id, status, last_error FROM journey_sends WHERE step = 'email_discount'"
    ).fetchall()
    silent = treated - {back, buyer}
    assert {c for c, *_ in sends} == silent
    assert {c for c, s, _ in sends if s == "suppressed"} == {unconsented} | ({"c02"} & silent)
    assert len(emails) == len(silent - {unconsented, "c02"})
    body = json.loads(emails[0].read_text())["content"]
    assert "CART10" in body["body"] and "10% off" in body["subject"]
    link = re.search(r"http://127\.0\.0\.1:3000/unsubscribe/(\S+)", body["body"])
    assert link and "@" not in base64.urlsafe_b64decode(link[1].split(".")[0] + "==").decode()
    assert (
        con.execute(
            "SELECT count(*) - count(DISTINCT idempotency_key) FROM journey_sends"
        ).fetchone()[0]
        == 0
    )

    # Measurement: the buyer converted (treated); the funnel counts each step.
    found = lift(con, journey=cart, now=later)
    assert (found.treated, found.treated_converted) == (len(treated), 1)
    assert found.holdout == len(holdout) and found.interval is not None
    table = funnel(con, journey=cart, now=later).set_index(["group", "step"])
    assert table.loc[("treated", "push_now"), "delivered"] == len(treated)
    assert table.loc[("treated", "email_discount"), "entered"] == len(silent)
    assert table.loc[("holdout", "(journey)"), "entered"] == len(holdout)
    assert f"treated {1 / len(treated):.1%} (1 of {len(treated)})" in found.sentence

    # Right to be forgotten: the buyer's journeys and messages go.
    assert erase_customers(con, customer_ids=[buyer]) >= 3
    for table in ("journey_enrollments", "journey_sends", "journey_dead_letters"):
        assert (
            con.execute(f"SELECT count(*) FROM {table} WHERE customer_id = ?", [buyer]).fetchone()[
                0
            ]
            == 0
        )


def test_quiet_hours_hold_sends_until_morning_and_the_cap_holds_messages_back(world) -> None:
    con, runtime, _ = world
    cart = load_journeys(folders=[EXAMPLES_DIR])[0]
    night = datetime(2026, 7, 1, 23, 30)
    tick(con, journeys=[cart], runtime=runtime, now=night)
    assert con.execute("SELECT count(*) FROM journey_sends").fetchone()[0] == 0
    due = con.execute(
        "SELECT DISTINCT due_at FROM journey_enrollments WHERE status = 'active'"
    ).fetchall()
    assert due == [(datetime(2026, 7, 2, 8),)]
    tick(con, journeys=[cart], runtime=runtime, now=datetime(2026, 7, 2, 8, 5))
    sent = con.execute("SELECT count(*) FROM journey_sends WHERE status = 'delivered'").fetchone()
    assert sent[0] > 0

    capped = Journey.model_validate(
        _journey(
            name="cart_capped",
            holdout=0,
            quiet_hours=None,
            frequency_cap={"messages": 1, "per": "7d"},
            steps=[{"id": "push_again", "send": {"channel": "push", "template": "cart_push"}}],
        )
    )
    tick(con, journeys=[capped], runtime=runtime, now=datetime(2026, 7, 2, 9))
    statuses = dict(
        con.execute(
            "SELECT status, count(*) FROM journey_sends WHERE journey = 'cart_capped' GROUP BY 1"
        ).fetchall()
    )
    assert statuses == {"capped": sent[0], "delivered": 40 - sent[0]}


def test_holdout_is_stable_and_re_running_a_tick_changes_nothing(world) -> None:
    con, runtime, _ = world
    cart = load_journeys(folders=[EXAMPLES_DIR])[0]
    tick(con, journeys=[cart], runtime=runtime, now=T0)
    before = _states(con)
    again = tick(con, journeys=[cart], runtime=runtime, now=T0)
    assert _states(con) == before
    assert (again.entered, again.steps, again.queued, again.delivered) == (0, 0, 0, 0)
    con.execute("DELETE FROM journey_enrollments")
    tick(con, journeys=[cart], runtime=runtime, now=T0 + timedelta(minutes=1))
    assert {c: s[0] for c, s in _states(con).items()} == {c: s[0] for c, s in before.items()}
