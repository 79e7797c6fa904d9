"""Forgetting a person: every store of the data folder, byte for byte; everyone else as before.

The small universe runs through the real pipeline (`built`: resolve, features, train,
score), then segments, activation (exports, report) and a journeys tick (state, sends).
A person with records in every source is forgotten; afterwards no file under the data
folder (binary files included) holds their e-mails, phones or names, and everyone else's
scores and segments are what they were.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import raw_values

import warehouse
from pipelines import flows
from pipelines.config import Settings
from pipelines.flows import privacy
from pipelines.flows.privacy import Identifier
from pipelines.relocate import relocate
from warehouse.schemas import Source
from warehouse.scrub import Tokens, scrub_file
from warehouse.sources import SOURCES


@pytest.fixture(scope="module")
def world(built, small_universe: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A private copy of the built universe, segmented, activated and in journeys."""
    root = tmp_path_factory.mktemp("forget") / "data"
    shutil.copytree(built.data_dir, root)
    settings = small_universe.model_copy(update={"data_dir": root})
    relocate(settings)
    flows.segments.run(settings)
    flows.activate.run(settings)
    flows.journeys.run(settings)
    return settings


def _query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _person(settings: Settings) -> str:
    """A scored segment member with records in every source whose e-mails, phones and name
    no other customer shares."""
    sources = len([s for s in SOURCES.values() if s.name != "consents"])
    rows = _query(
        settings,
        """SELECT p.customer_id FROM profiles p
           WHERE len(p.sources) = ? AND p.customer_id IN (SELECT customer_id FROM current_scores)
             AND p.customer_id IN (SELECT customer_id FROM segment_membership)
             AND NOT EXISTS (SELECT 1 FROM customer_identifiers a JOIN customer_identifiers b
                             USING (id_type, id_value)
                             WHERE a.customer_id = p.customer_id
                               AND b.customer_id <> p.customer_id)
             AND (SELECT count(*) FROM profiles o WHERE o.first_name = p.first_name
                  AND o.last_name = p.last_name) = 1
           ORDER BY p.n_records DESC, p.customer_id LIMIT 1""",
        [sources],
    )
    assert rows, "the small universe has no one with records in every source"
    return rows[0][0]


def _needles(settings: Settings, customer_id: str) -> set[str]:
    """The person's e-mails, phones and full names as every raw record of theirs writes them."""

    def columns(source: Source) -> list[str]:
        selects = [source.records[r] for r in ("email", "phone") if r in source.records]
        if {"first_name", "last_name"} <= set(source.records):
            first, last = source.records["first_name"], source.records["last_name"]
            selects.append(f"concat_ws(' ', {first}, {last})")
        return selects

    return raw_values(settings, customer_id, columns)


def _files_holding(root: Path, needles: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    encoded = [(n, n.encode()) for n in needles]
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n, b in encoded if b in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_a_forgotten_person_is_gone_from_every_file_and_everyone_else_is_unchanged(
    world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = _person(world)
    needles = _needles(world, person)
    emails = sorted(n for n in needles if "@" in n)
    assert emails and any(" " in n and "@" not in n for n in needles)  # e-mails and a name
    before = _files_holding(world.data_dir, needles)
    assert {"sources/crm_contacts.csv", "sources/events.jsonl"} <= set(before)
    others = {
        "scores": "SELECT * EXCLUDE (scored_at) FROM current_scores WHERE customer_id <> ?"
        " ORDER BY customer_id",
        "segments": "SELECT segment, customer_id, entered_at, exited_at FROM segment_membership"
        " WHERE customer_id <> ? ORDER BY ALL",
        "profiles": "SELECT * FROM profiles WHERE customer_id <> ? ORDER BY customer_id",
    }
    snapshot = {name: _query(world, sql, [person]) for name, sql in others.items()}

    # A failure half-way leaves the request pending, never reported done ...
    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(privacy, "scrub_file", broken)
        failed = privacy.forget(world, identifiers=[Identifier("email", emails[0])])
    assert failed.status == "pending" and "disk full" in failed.error
    assert failed.customers == 1
    assert list((world.data_dir / "privacy" / "pending").glob("*.json"))

    # ... and the next call completes it first.
    done = privacy.forget(world, identifiers=[])
    assert done.status == "done" and done.replayed == [failed.request_id]
    assert not list((world.data_dir / "privacy" / "pending").glob("*.json"))

    assert _files_holding(world.data_dir, needles) == {}
    for table in ("identity_map", "segment_membership", "journey_enrollments", "journey_sends"):
        assert _query(world, f"SELECT count(*) FROM {table} WHERE customer_id = ?", [person]) == [
            (0,)
        ], table
    assert {name: _query(world, sql, [person]) for name, sql in others.items()} == snapshot
    audit = (world.data_dir / "privacy" / "audit.jsonl").read_text()
    assert failed.request_id in audit and not any(n in audit for n in needles)

    # Their identifiers sent again are dropped and counted as suppressed.
    signed_up = "2026-09-01"
    con = warehouse.connect(world.paths.warehouse)
    try:
        again = warehouse.append_rows(
            con,
            source="accounts",
            rows=[
                {"user_id": "u-new-1", "email": f"  {emails[0].upper()} ", "signup_at": signed_up},
                {"user_id": "u-new-2", "email": "someone.else@example.com", "signup_at": signed_up},
            ],
            origin="test",
        )  # fmt: skip
    finally:
        con.close()
    assert (again.rows_read, again.rows_loaded, again.rows_suppressed) == (2, 1, 1)


def test_an_identifier_matching_no_one_answers_so_and_is_suppressed(world: Settings) -> None:
    outcome = privacy.forget(world, identifiers=[Identifier("phone", "+1 (555) 010-9999")])
    assert outcome.status == "done"
    assert outcome.customers == 0 and outcome.unmatched == ["phone …99"]
    con = warehouse.connect(world.paths.warehouse)
    try:
        report = warehouse.append_rows(
            con,
            source="support_tickets",
            rows=[{"ticket_id": "t-new", "phone": "555.010.9999", "created_at": "2026-09-01",
                   "topic": "billing"}],
            origin="test",
        )  # fmt: skip
    finally:
        con.close()
    assert report.rows_suppressed == 1 and report.rows_loaded == 0


def test_bad_identifiers_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown identifier kind 'fax'"):
        Identifier("fax", "123")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="an empty email names no one"):
        Identifier("email", "  ")
    bad = tmp_path / "ids.csv"
    bad.write_text("mail\nann@example.com\n")
    with pytest.raises(ValueError, match="header must name identifier kinds"):
        privacy.read_identifiers(bad)
    good = tmp_path / "good.csv"
    good.write_text("email,phone\nann@example.com,\n,+12025550101\n")
    assert privacy.read_identifiers(good) == [
        Identifier("email", "ann@example.com"),
        Identifier("phone", "+12025550101"),
    ]


def test_an_access_request_exports_everything_held_about_a_person(
    world: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    customer, email = _query(
        world,
        """SELECT p.customer_id, p.email FROM profiles p JOIN current_scores USING (customer_id)
           WHERE p.email IS NOT NULL AND len(p.sources) >= 3
             AND customer_id IN (SELECT customer_id FROM segment_membership)
           ORDER BY p.n_records DESC, customer_id LIMIT 1""",
    )[0]
    monkeypatch.setenv("CIP_DATA_DIR", str(world.data_dir))
    out = tmp_path / "access.json"
    result = CliRunner().invoke(
        app, ["privacy", "export", "--email", email.upper(), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert document["matched"] and [c["customer_id"] for c in document["customers"]] == [customer]
    held = document["customers"][0]
    assert held["profile"]["email"] == email
    assert (
        len(held["records"]) >= 3
        and sum(map(len, held["records"].values()))
        == _query(world, "SELECT count(*) FROM identity_map WHERE customer_id = ?", [customer])[0][
            0
        ]
    )
    assert {c["purpose"] for c in held["consents"]} <= {"email", "sms", "ads", "profiling"}
    assert held["scores"] and "churn_probability" in held["scores"][0]
    assert held["segments"] and set(held["sends"]) == {"emails", "segment_deliveries"}
    nobody = CliRunner().invoke(app, ["privacy", "export", "--email", "nobody@nowhere.example"])
    assert nobody.exit_code == 0 and '"matched": false' in nobody.output


def test_the_forget_command_refuses_bad_input_and_names_unmatched_identifiers(
    world: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("CIP_DATA_DIR", str(world.data_dir))
    runner = CliRunner()
    empty = runner.invoke(app, ["privacy", "forget"])
    assert empty.exit_code == 2 and "name someone" in empty.output
    bad = tmp_path / "ids.csv"
    bad.write_text("fax\n123\n")
    wrong = runner.invoke(app, ["privacy", "forget", "--file", str(bad)])
    assert wrong.exit_code == 2 and "header must name identifier kinds" in wrong.output
    ids = tmp_path / "good.csv"
    ids.write_text("email\nno.such.person@nowhere.example\n")
    result = runner.invoke(app, ["privacy", "forget", "--file", str(ids)])
    assert result.exit_code == 0, result.output
    assert "email …nowhere.example matched no one" in result.output


def test_json_lines_are_matched_in_arrow_as_one_by_one(tmp_path: Path) -> None:
    """The vectorized match of a JSON-lines file agrees with the line-by-line one: values
    trimmed and case-blind, escapes, non-ASCII text and bytes that are not UTF-8."""
    tokens = Tokens.of(values=["ann@example.com", "C-123", "u-9"], texts=[])
    lines = [
        json.dumps({"a": "x", "email": " ANN@example.com "}) + "\n",
        '{"b": "C-123"}\n',
        '{"c": "no", "d": "C-1234"}\n',
        json.dumps({"name": "Анна", "uid": "u-9"}, ensure_ascii=False) + "\n",
        json.dumps({"name": "Анна", "uid": "u-8"}) + "\n",
        '{"q": "say \\"C-123\\""}\n',
        '{"e": "ann\\u0040example.com"}\n',
        "\n",
        '{"u-9": 1}\n',
    ]
    expected = [True, True, False, True, False, False, True, False, True]
    assert [tokens.line(line) for line in lines] == expected
    ascii_only = [
        (line, gone) for line, gone in zip(lines, expected, strict=True) if line.isascii()
    ]
    cases = [
        list(zip(lines, expected, strict=True)),  # UTF-8 text
        [
            *zip(lines, expected, strict=True),
            ('{"x": "\udcff", "u": "u-9"}\n', True),
            ('{"f": "a\x0cb"}\n', False),
        ],  # not UTF-8, and a form feed (no line end here)
        ascii_only * 3,  # ASCII text, lines paired in Arrow across the whole file
    ]
    for case in cases:
        path = tmp_path / "events.jsonl"
        path.write_bytes("".join(line for line, _ in case).encode(errors="surrogateescape"))
        assert scrub_file(path, tokens=tokens).removed == sum(gone for _, gone in case)
        assert path.read_bytes() == "".join(line for line, gone in case if not gone).encode()


def test_csv_rows_go_whole_and_the_rest_keeps_its_bytes(tmp_path: Path) -> None:
    """One row per line: the doomed lines are cut and every other byte stays (quoting,
    line ends); a value spanning lines is handled row by row."""
    tokens = Tokens.of(values=["ann@example.com", "42"], texts=[])
    kept = ["id,email,note\r\n", '1,bob@example.com,"a, b"\r\n', '7,"x",\r\n']
    doomed = ["2, Ann@Example.com ,\r\n", '42,,"say ""hi"""\r\n']
    path = tmp_path / "people.csv"
    path.write_bytes((kept[0] + doomed[0] + kept[1] + doomed[1] + kept[2]).encode())
    assert scrub_file(path, tokens=tokens).removed == 2
    assert path.read_bytes() == "".join(kept).encode()
    path.write_bytes(b'id,note\n1,"two\nlines"\n42,x\n')
    assert scrub_file(path, tokens=tokens).removed == 1
    assert path.read_bytes() == b'id,note\n1,"two\nlines"\n'
