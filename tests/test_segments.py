"""Segment definitions, rule evaluation and membership history on a small hand-made warehouse."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from segments import (
    EXAMPLES_DIR,
    DefinitionError,
    changes_between,
    evaluate_segments,
    load_definitions,
    members_at,
    refresh_segments,
    runs,
)

# The known answer of each example segment in the `segment_world` fixture (tests/conftest.py).
EXPECTED = {
    # e-mailable, top 30% by spend over the year (the 18th of 58 spends is c01..c09's 120:
    # ties at the threshold are in) and the riskiest 30% of the 19 e-mailable scored (the
    # 6th probability is 0.2, so c11 and l1..l5 tie in); c02 cannot be e-mailed
    "at_risk_valuable": ["c01", "c03", "c04", "c11", "c12", "l1", "l2", "l3", "l4", "l5"],
    # cart add in 3 days, nothing bought since: c06 bought after, c07's add is 5 days old,
    # c09 completed the order in the app (an `Order Completed` event); c08 bought before adding
    "cart_abandoners_3d": ["c05", "c08"],
    # >= 4 orders in a year and an average order in the top 30% (the 18th of 58 is 60):
    # c11's latest snapshot has 5 orders but averages 50; c12's future one is not visible yet
    "loyal_high_value": ["c10"],
    # the riskiest 10% of the 19 e-mailable scored: 2 (c02, riskier than c03, refused e-mail)
    "likely_to_churn": ["c01", "c03"],
    # never bought; the 10% of 42 candidates (5) browsing most like the 8 top-LTV seeds
    "lookalike_prospects": ["l1", "l2", "l3", "l4", "l5"],
    # browsed in 30 days with ad consent, never bought: c10 and c12 are existing customers
    # (orders), c04 browsed 40 days ago, c03 refuses ads
    "acquisition_prospects": ["c11"],
}


@pytest.fixture
def con(segment_world: Path):
    with duckdb.connect(str(segment_world)) as connection:
        yield connection


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_every_example_segment_has_its_known_answer(con) -> None:
    definitions = load_definitions(folders=[EXAMPLES_DIR])
    assert sorted(d.name for d in definitions) == sorted(EXPECTED)
    members = evaluate_segments(con, definitions=definitions)
    assert {name: list(ids) for name, ids in members.items()} == EXPECTED


def test_unknown_field_fails_before_anything_is_written(con, tmp_path: Path) -> None:
    rule = "{field: scores.churn_decle, op: '>=', value: 8}"
    write(tmp_path, "typo", f"name: typo\ndescription: x\nrule: {rule}\n")
    definitions = load_definitions(folders=[EXAMPLES_DIR, tmp_path])
    with pytest.raises(DefinitionError) as error:
        refresh_segments(con, definitions=definitions)
    message = str(error.value)
    assert "segment 'typo'" in message
    assert "unknown field 'scores.churn_decle'" in message
    assert "did you mean scores.churn_decile" in message
    tables = {
        t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    assert "segment_runs" not in tables


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("{field: scores.churn_probability, op: '>', value: hi}", "needs a number value, got 'hi'"),
        ("{field: profile.consent_email, op: '>', value: 1}", "is boolean: operator '>' does not"),
        ("{field: order.orders_365d, op: between, value: [1]}", "needs a list of two number"),
        ("{field: profile.first_name, op: '=', value: 3}", "needs a text value, got 3"),
        ("{event: cart_addd, within_days: 3}", "unknown event 'cart_addd'"),
    ],
)  # fmt: skip
def test_wrong_type_names_the_segment_and_the_field(con, tmp_path, condition, expected) -> None:
    write(tmp_path, "wrong", f"name: wrong\ndescription: x\nrule: {condition}\n")
    with pytest.raises(DefinitionError, match=r"segment 'wrong'.*") as error:
        evaluate_segments(con, definitions=load_definitions(folders=[tmp_path]))
    assert expected in str(error.value)


def test_malformed_definition_names_file_segment_and_place(tmp_path: Path) -> None:
    rule = "{all: [{field: a.b, op: '~', value: 1}]}"
    path = write(tmp_path, "bad", f"name: bad\ndescription: x\nrule: {rule}\n")
    with pytest.raises(DefinitionError) as error:
        load_definitions(folders=[tmp_path])
    assert f"{path}: segment 'bad': at rule.all.0.op: Input should be" in str(error.value)


def test_user_definitions_replace_examples_and_cycles_are_refused(con, tmp_path) -> None:
    rule = "{field: scores.churn_probability, op: '>', value: 0.925}"
    write(tmp_path, "mine", f"name: likely_to_churn\ndescription: mine\nrule: {rule}\n")
    definitions = load_definitions(folders=[EXAMPLES_DIR, tmp_path])
    members = evaluate_segments(con, definitions=definitions)
    assert list(members["likely_to_churn"]) == ["c01", "c02"]
    write(tmp_path, "a", "name: a\ndescription: x\nexclude: {segments: [b]}\n")
    write(tmp_path, "b", "name: b\ndescription: x\nexclude: {segments: [a]}\n")
    with pytest.raises(DefinitionError, match="cycle"):
        evaluate_segments(con, definitions=load_definitions(folders=[tmp_path]))


def test_membership_history_answers_who_entered_and_left(con) -> None:
    segment = "cart_abandoners_3d"
    definitions = [d for d in load_definitions(folders=[EXAMPLES_DIR]) if d.name == segment]
    first = refresh_segments(con, definitions=definitions, run_id="r1")[0]
    assert (first.size, first.entered, first.exited) == (2, 2, 0)
    # c05 buys, c07 adds to the cart again: one leaves, one enters.
    clock = datetime(2026, 6, 30, 12)
    con.execute("INSERT INTO raw_orders VALUES ('o-new', 'online', ?, 20.0)", [clock])
    con.execute("INSERT INTO raw_events (message_id, type, event, timestamp) VALUES "
                "('e-new', 'track', 'Product Added', ?)", [clock - timedelta(hours=1)])  # fmt: skip
    con.execute("INSERT INTO identity_map VALUES ('orders', 'o-new', 'c05')")
    con.execute("INSERT INTO identity_map VALUES ('events', 'e-new', 'c07')")
    second = refresh_segments(con, definitions=definitions, run_id="r2")[0]
    assert (second.size, second.entered, second.exited) == (2, 1, 1)
    diff = changes_between(
        con, segment=segment, since=first.evaluated_at, until=second.evaluated_at
    )
    assert diff.values.tolist() == [["c07", "entered"], ["c05", "exited"]]
    before = members_at(con, segment=segment, at=first.evaluated_at)
    after = members_at(con, segment=segment, at=second.evaluated_at)
    assert list(before.customer_id) == ["c05", "c08"]
    assert list(after.customer_id) == ["c07", "c08"]
    history = runs(con, segment=segment)
    assert history[["run_id", "size", "entered", "exited"]].values.tolist() == [
        ["r1", 2, 2, 0],
        ["r2", 2, 1, 1],
    ]
    # A third run with nothing new changes nothing.
    third = refresh_segments(con, definitions=definitions, run_id="r3")[0]
    assert (third.size, third.entered, third.exited) == (2, 0, 0)


def test_an_empty_segment_is_recorded_with_size_zero(con, tmp_path: Path) -> None:
    rule = "{field: scores.churn_probability, op: '>', value: 2}"
    write(tmp_path, "nobody", f"name: nobody\ndescription: x\nrule: {rule}\n")
    run = refresh_segments(con, definitions=load_definitions(folders=[tmp_path]))[0]
    assert (run.segment, run.size, run.entered, run.exited) == ("nobody", 0, 0, 0)
