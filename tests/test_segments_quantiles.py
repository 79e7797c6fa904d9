"""Thresholds relative to the population (`top_percent`, `bottom_percent`, `among`) on the
hand-made segment warehouse: what "likely to churn" and "valuable" mean in any currency."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from segments import DefinitionError, evaluate_segments, load_definitions

# Current churn probabilities: c01 .95, c02 .93, c03 .92, c12 .91, c04 .30, c11 and the five
# look-alikes .20, c10 and the eight seeds .10 (20 scored customers); c02 refuses e-mail.


def members(segment_world: Path, tmp_path: Path, rule: dict) -> list[str]:
    folder = tmp_path / "defs"
    folder.mkdir(exist_ok=True)
    (folder / "probe.yaml").write_text(
        yaml.safe_dump({"name": "probe", "description": "x", "rule": rule})
    )
    with duckdb.connect(str(segment_world)) as con:
        found = evaluate_segments(con, definitions=load_definitions(folders=[folder]))
    return list(found["probe"])


def test_top_percent_is_a_quantile_of_everyone_with_a_value(segment_world, tmp_path) -> None:
    top = {"field": "scores.churn_probability", "op": "top_percent", "value": 10}
    assert members(segment_world, tmp_path, top) == ["c01", "c02"]  # 10% of 20
    bottom = {"field": "scores.churn_probability", "op": "bottom_percent", "value": 40}
    assert members(segment_world, tmp_path, bottom) == sorted(
        ["c10", *(f"s{i}" for i in range(1, 9))]
    )
    everyone = {"field": "scores.churn_probability", "op": "top_percent", "value": 100}
    assert len(members(segment_world, tmp_path, everyone)) == 20  # unscored people are not in


def test_among_ranks_within_the_contactable_population(segment_world, tmp_path) -> None:
    emailable = {"field": "profile.consent_email", "op": "=", "value": True}
    riskiest = {"field": "scores.churn_probability", "op": "top_percent", "value": 20}
    # The riskiest 20% of all 20 scored (c01, c02, c03, c12), of whom c02 cannot be emailed.
    assert members(segment_world, tmp_path, {"all": [emailable, riskiest]}) == [
        "c01", "c03", "c12"
    ]  # fmt: skip
    # The riskiest 20% of the 19 who can be emailed: 4 of them (c04's .30 is the fourth).
    among = {"all": [emailable, {**riskiest, "among": emailable}]}
    assert members(segment_world, tmp_path, among) == ["c01", "c03", "c04", "c12"]


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"field": "scores.churn_probability", "op": "top_percent", "value": 0},
         "needs a percentage above 0 and at most 100"),
        ({"field": "profile.first_name", "op": "top_percent", "value": 10},
         "is text: operator 'top_percent' does not apply"),
        ({"field": "scores.churn_probability", "op": ">", "value": 0.5,
          "among": {"field": "profile.consent_email", "op": "=", "value": True}},
         "`among` goes with top_percent or bottom_percent only"),
        ({"field": "scores.churn_probability", "op": "top_percent", "value": 10,
          "among": {"field": "profile.consent_mail", "op": "=", "value": True}},
         "unknown field 'profile.consent_mail'"),
    ],
)  # fmt: skip
def test_quantile_conditions_are_checked_like_any_other(
    segment_world, tmp_path, condition, problem
) -> None:
    with pytest.raises(DefinitionError, match=problem.replace("(", r"\(")):
        members(segment_world, tmp_path, condition)
