"""Any person table through `resolve_table` and `cip resolve file`, with its defaults only.

Each test builds a small table whose duplicates carry one kind of error (a date written
another way, first and last name swapped, an id number with a typo, no email or phone at
all), so a defect in reading, comparing, blocking, training or clustering shows up as a
missed or a false pair. Real DuckDB and real Splink throughout.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from resolution import InputError, NoUsableColumn, resolve_table
from resolution.dates import from_parts, read_dates
from resolution.linkage import PAIRS, accepted_merges
from resolution.training import inversion, isotonic

FIRST = ["anna", "james", "maria", "john", "olga", "peter", "linda", "ivan", "sara", "tom",
         "emma", "noah", "lucas", "mia", "leo", "ella", "omar", "nina", "hugo", "ines"]  # fmt: skip
LAST = ["smith", "jones", "brown", "ivanova", "petrov", "garcia", "miller", "davis", "moore",
        "taylor", "wilson", "clark", "lewis", "walker", "young", "king", "wright", "scott",
        "green", "baker", "adams", "nelson", "hill", "campbell", "mitchell"]  # fmt: skip
N_PEOPLE = 150


def people(n: int = N_PEOPLE, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    born = date(1940, 1, 1)
    return [
        {
            "id": f"p{i}",
            "person": i,
            "given": rng.choice(FIRST),
            "family": rng.choice(LAST),
            "dob": born + timedelta(days=rng.randrange(60 * 365)),
            "ssn": f"{rng.randrange(10**8, 10**9)}",
            "street": f"{rng.randrange(1, 200)} {rng.choice(LAST)} road",
            "zip": f"{rng.randrange(2000, 2999)}",
        }
        for i in range(n)
    ]


def typo(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text))
    return text[:i] + rng.choice("aeiouxz") + text[i + 1 :]


def with_duplicates(rows: list[dict], error: str, seed: int = 5) -> list[dict]:
    """Every other person again, with one `error`; `person` keeps the truth."""
    rng = random.Random(seed)
    out = list(rows)
    for row in rows[::2]:
        dup = dict(row, id=row["id"] + "-dup")
        if error == "swapped names":
            dup["given"], dup["family"] = row["family"], row["given"]
        elif error == "id typo":
            dup["ssn"] = typo(row["ssn"], rng)
        elif error == "name typo":
            dup["family"] = typo(row["family"], rng)
        elif error == "day and month swapped" and row["dob"].day <= 12:
            dup["dob"] = row["dob"].replace(month=row["dob"].day, day=row["dob"].month)
        elif error == "date digit":  # one wrong digit in the day: 1956-04-09 -> 1956-04-08
            dup["dob"] = row["dob"] + timedelta(days=1 if row["dob"].day % 10 != 9 else -1)
        out.append(dup)
    return out


def truth_pairs(rows: list[dict]) -> set[tuple[str, str]]:
    by_person: dict[int, list[str]] = {}
    for row in rows:
        by_person.setdefault(row["person"], []).append(row["id"])
    return {(a, b) for ids in by_person.values() for a in ids for b in ids if a < b}


def found_pairs(result) -> set[tuple[str, str]]:
    ids = result.clusters.column("record_id").to_pylist()
    clusters = result.clusters.column("cluster_id").to_pylist()
    by_cluster: dict[str, list[str]] = {}
    for record, cluster in zip(ids, clusters, strict=True):
        by_cluster.setdefault(cluster, []).append(record)
    return {(a, b) for members in by_cluster.values() for a in members for b in members if a < b}


def quality(result, rows: list[dict]) -> tuple[float, float]:
    found, true = found_pairs(result), truth_pairs(rows)
    precision = len(found & true) / len(found) if found else 1.0
    return precision, len(found & true) / len(true)


MAPPING = {"first_name": "given", "surname": "family", "date_of_birth": "dob",
           "address": "street", "postcode": "zip"}  # fmt: skip


def frame(rows: list[dict], dob_format: str = "%Y-%m-%d") -> pd.DataFrame:
    df = pd.DataFrame(rows).drop(columns=["person"])
    df["dob"] = [d.strftime(dob_format) for d in df["dob"]]
    return df


# -- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "layout"),
    [
        (["1956-04-09", "1960-12-31"], "iso"),
        (["19560409", "19601231"], "compact"),
        (["09/04/1956", "31/12/1960"], "day first"),
        (["04/09/1956", "12/31/1960"], "month first"),
        (["09.04.1956", "31.12.1960"], "day first"),
        (["1956/04/09", "1960/12/31"], "year first, slashes"),
        (["1956-04-09T00:00:00", "1960-12-31 10:00"], "iso"),
    ],
)
def test_dates_are_read_from_every_common_layout(values: list[str], layout: str) -> None:
    reading = read_dates(values)
    assert reading.layout == layout
    assert reading.values == ["1956-04-09", "1960-12-31"]
    assert reading.unreadable == reading.invalid == 0


def test_ambiguous_dates_are_decided_by_the_column_and_bad_ones_counted() -> None:
    reading = read_dates(["03/04/1956", "05/06/1970", "01/02/1990"], month_first=True)
    assert reading.layout == "month first" and reading.guessed_order
    assert reading.values[0] == "1956-03-04"
    mixed = read_dates(["19560400", "19561304", "soon", None, "", "19700101"])
    assert mixed.values == ["1956-04-00", "1956-13-04", None, None, None, "1970-01-01"]
    assert (mixed.invalid, mixed.unreadable) == (2, 1)
    assert "1 unreadable (e.g. 'soon')" in mixed.describe()
    parts = from_parts(["1956", "1970", None], ["4", "13", "1"], ["9", "1", "1"])
    assert parts.values == ["1956-04-09", "1970-13-01", None]
    assert parts.invalid == 1


def test_compact_dates_and_date_parts_link_the_duplicates() -> None:
    rows = with_duplicates(people(), "name typo")
    compact = resolve_table(frame(rows, "%Y%m%d"), mapping=MAPPING, id_column="id")
    assert compact.profile["date_of_birth"].reading.layout == "compact"
    df = frame(rows)
    df["y"], df["m"], df["d"] = zip(*(v.split("-") for v in df.pop("dob")), strict=True)
    mapping = {k: v for k, v in MAPPING.items() if k != "date_of_birth"}
    mapping |= {"birth_year": "y", "birth_month": "m", "birth_day": "d"}
    parts = resolve_table(df, mapping=mapping, id_column="id")
    for result in (compact, parts):
        precision, recall = quality(result, rows)
        assert precision == 1.0 and recall >= 0.97
        assert any("date_of_birth" in r.rule for r in result.choices.blocking.kept)


# -- comparisons, blocking, prior ---------------------------------------------------------------


def test_a_date_with_one_wrong_digit_is_still_evidence() -> None:
    rows = with_duplicates(people(), "date digit")
    result = resolve_table(frame(rows), mapping=MAPPING, id_column="id")
    weights = {row["level"]: row["match_weight"] for row in result.m_u_table()}
    assert weights["date_of_birth one edit"] > 3
    precision, recall = quality(result, rows)
    assert precision == 1.0 and recall >= 0.97


def test_swapped_first_and_last_names_are_linked() -> None:
    rows = with_duplicates(people(), "swapped names")
    result = resolve_table(frame(rows), mapping=MAPPING, id_column="id")
    precision, recall = quality(result, rows)
    assert precision == 1.0 and recall >= 0.97
    levels = [row["level"] for row in result.m_u_table()]
    assert "first_name and last_name swapped" in levels


def test_an_id_number_with_a_typo_counts_for_the_pair_and_keeps_its_name() -> None:
    rows = with_duplicates(people(), "id typo")
    df = frame(rows)[["id", "given", "family", "ssn"]]
    result = resolve_table(
        df, mapping={"first_name": "given", "surname": "family"}, extra_columns=["ssn"]
    )
    assert result.profile["ssn"].kind == "identifier"
    weights = {row["level"]: row["match_weight"] for row in result.m_u_table()}
    assert weights["ssn one edit"] > 3  # a typo is still strong evidence, not against
    assert "ssn" in {c["output_column_name"] for c in result.configuration["comparisons"]}
    precision, recall = quality(result, [dict(r, id=str(i)) for i, r in enumerate(rows)])
    assert precision == 1.0 and recall >= 0.97


def test_a_table_without_email_or_phone_estimates_its_own_prior() -> None:
    rows = with_duplicates(people(), "day and month swapped")
    result = resolve_table(frame(rows), mapping=MAPPING, id_column="id")
    training = result.choices.training
    assert training.prior is not None and training.prior != 1e-4
    n = len(rows)
    assert 0.3 < training.prior / (len(truth_pairs(rows)) / (n * (n - 1) / 2)) < 3
    assert any("date_of_birth" in r for r in training.prior_rules)
    columns = {c["output_column_name"] for c in result.configuration["comparisons"]}
    assert "address_postcode" in columns  # postcode is evidence, with the address
    precision, recall = quality(result, rows)
    assert precision == 1.0 and recall >= 0.97


def test_blocking_fits_the_budget_and_is_reported() -> None:
    rows = with_duplicates(people(), "name typo")
    result = resolve_table(frame(rows), mapping=MAPPING, id_column="id")
    blocking = result.choices.blocking
    assert sum(r.marginal for r in blocking.kept) <= blocking.budget
    kept = {r.rule for r in blocking.kept}
    assert {"l.date_of_birth = r.date_of_birth", "l.postcode = r.postcode"} <= kept
    assert all(r.comparisons > 0 for r in blocking.kept)


# -- training checks and clustering -------------------------------------------------------------


def test_inverted_levels_are_fitted_in_order() -> None:
    u = [0.01, 0.05, 0.94]
    inverted = [0.05, 0.8, 0.15]  # a near match says more than an exact one: EM went astray
    assert inversion(inverted, u) > 1
    fitted = isotonic(inverted, u)
    assert inversion(fitted, u) == pytest.approx(0)
    assert sum(fitted) == pytest.approx(1)
    assert isotonic([0.8, 0.15, 0.05], u) == pytest.approx([0.8, 0.15, 0.05])


def test_a_weak_link_does_not_chain_two_customers_together() -> None:
    """A till slip matching two customers who are plainly not one person joins neither;
    a record matching one customer joins it."""
    con = duckdb.connect()
    nodes = pa.table({"uid": ["a1", "a2", "b1", "slip", "c1", "c-slip"],
                      "det_component": [0, 0, 1, 2, 3, 4]})  # fmt: skip
    con.register("res_record_nodes", nodes)
    pairs = pa.table({"unique_id_l": ["slip", "slip", "a1", "a2", "c-slip"],
                      "unique_id_r": ["a1", "b1", "b1", "b1", "c1"],
                      "match_weight": [5.0, 5.0, -8.0, -9.0, 6.0],
                      "match_probability": [0.97, 0.96, 0.01, 0.005, 0.98]})  # fmt: skip
    con.register(PAIRS, pairs)
    merges = {tuple(sorted(m)) for m in accepted_merges(con, threshold=0.9).tolist()}
    assert merges == {(3, 4)}


# -- usability ----------------------------------------------------------------------------------


def test_any_table_form_settings_optional_and_configuration_reused(tmp_path: Path) -> None:
    rows = with_duplicates(people(60), "name typo")
    df = frame(rows)
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    path = tmp_path / "people.csv"
    pacsv.write_csv(arrow, path)
    relation = duckdb.connect().from_arrow(arrow)
    results = [resolve_table(t, mapping=MAPPING, id_column="id") for t in (df, path, relation)]
    assert len({frozenset(found_pairs(r)) for r in results}) == 1
    saved = results[0].save_configuration(tmp_path / "model.json")
    assert json.loads(saved.read_text())["comparisons"]
    again = resolve_table(arrow, mapping=MAPPING, id_column="id", configuration=saved)
    assert again.choices is None  # trained parameters reused, nothing re-estimated
    assert found_pairs(again) == found_pairs(results[0])


@pytest.mark.parametrize(
    ("table", "kwargs", "message"),
    [
        (pd.DataFrame({"a": ["x"]}), {"mapping": {"name": "a"}}, "unknown role 'name'"),
        (pd.DataFrame({"a": ["x"]}), {"mapping": {"email": "Mail"}}, "column 'Mail' is not"),
        (pd.DataFrame({"a": []}), {"mapping": {"email": "a"}}, "the table is empty"),
        (pd.DataFrame({"a": [None, None, None]}), {"mapping": {"email": "a"}}, "no column can"),
        (
            pd.DataFrame({"a": ["x"], "y": ["1"]}),
            {"mapping": {"birth_year": "y"}},
            "birth_year mapped without birth_month, birth_day",
        ),
        (object(), {"mapping": {"email": "a"}}, "cannot read a table from a object"),
    ],
)
def test_bad_input_gets_a_clear_error(table, kwargs: dict, message: str) -> None:
    with pytest.raises((InputError, NoUsableColumn), match=message):
        resolve_table(table, **kwargs)


def test_cli_prints_the_configuration_saves_it_and_exits_2_on_bad_input(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CIP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    rows = with_duplicates(people(60), "swapped names")
    path = tmp_path / "people.csv"
    frame(rows, "%d/%m/%Y").to_csv(path, index=False)
    args = ["resolve", "file", str(path), "--id", "id"]
    for role, column in MAPPING.items():
        args += ["--map", f"{role}={column}"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    for shown in ("blocking rules", "prior (probability two random records match)",
                  "EM blocked on", "day first", "match weight"):  # fmt: skip
        assert shown in done.output
    saved = path.with_suffix(".splink.json")
    clusters = pd.read_csv(path.with_suffix(".clusters.csv"))
    assert len(clusters) == len(rows)
    again = [*args, "--settings", str(saved), "-o", str(tmp_path / "b.csv")]
    reused = CliRunner().invoke(app, again)
    assert reused.exit_code == 0, reused.output
    assert np.array_equal(pd.read_csv(tmp_path / "b.csv")["cluster_id"], clusters["cluster_id"])
    for bad, message in [
        (["--map", "email=Nope"], "column 'Nope' is not in the table"),
        (["--map", "role=given"], "unknown role 'role'"),
    ]:
        failed = CliRunner().invoke(app, ["resolve", "file", str(path), *bad])
        assert failed.exit_code == 2 and message in failed.output
    missing = CliRunner().invoke(app, ["resolve", "file", str(tmp_path / "none.csv"), *args[3:]])
    assert missing.exit_code == 2 and "no such file" in missing.output
