"""The Splink model: settings as data, training, the saved JSON, and prediction.

`MatchModel` wraps a Splink model dictionary plus the term-frequency tables
computed when it was trained. Training estimates the prior from exact email or
phone agreement, u by random sampling and m by expectation maximisation (each
capped by `max_pairs`). The model is saved as Splink JSON (`model.json`) with
the term-frequency tables as parquet beside it, so a later run (full or
incremental) scores every pair exactly as the run that trained it.

Splink runs in its own in-memory DuckDB: the warehouse never sees its
intermediate tables. Before predicting, the blocking rules' comparison count
is measured with Splink's blocking analysis and prediction is refused when it
exceeds `max_comparisons`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.exceptions import SplinkException

from resolution.settings import ResolutionSettings

__all__ = ["BLOCKING_ONLY", "MATCH_COLUMNS", "BlockingTooLoose", "MatchModel", "usable_rules"]

# Person attributes given to Splink, in the order of the comparisons. The postcode is only
# a blocking key: it is too correlated with the address to count twice as evidence.
MATCH_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "address",
    "city",
    "store_id",
    "postcode",
)
BLOCKING_ONLY = ("postcode",)
TF_COLUMNS = ("first_name", "last_name", "date_of_birth", "city", "store_id")
MODEL_FILE = "model.json"
MIN_EM_PAIRS = 20
PREDICTION_COLUMNS = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]

logging.getLogger("splink").setLevel(logging.WARNING)
logger = logging.getLogger(__name__)


class BlockingTooLoose(RuntimeError):
    """The blocking rules would generate more comparisons than allowed."""


def _comparison(column: str):
    match column:
        case "first_name" | "last_name":
            return cl.NameComparison(column).configure(term_frequency_adjustments=True)
        case "email":  # fuzzy email levels would count the name (its usual source) twice
            return cl.ExactMatch(column)
        case "phone":
            return cl.LevenshteinAtThresholds(column, [1])
        case "date_of_birth":
            return cl.DateOfBirthComparison(column, input_is_string=True).configure(
                term_frequency_adjustments=True
            )
        case "address":
            return cl.JaroWinklerAtThresholds(column, [0.95, 0.85])
        case "city" | "store_id":
            return cl.ExactMatch(column).configure(term_frequency_adjustments=True)
        case _:
            return cl.ExactMatch(column)


def usable_rules(rules: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The rules whose every `l.col`/`r.col` reference is among `columns`."""
    available = set(columns)
    return [r for r in rules if set(re.findall(r"\b[lr]\.(\w+)", r)) <= available]


@dataclass
class MatchModel:
    """A trained Splink model (`settings`, Splink's JSON dict) and its term frequencies."""

    settings: dict[str, Any]
    term_frequencies: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The compared columns."""
        return [c["output_column_name"] for c in self.settings["comparisons"]]

    @property
    def record_columns(self) -> list[str]:
        """The columns a record needs to be scored: compared ones and blocking keys."""
        return [*self.columns, *(c for c in BLOCKING_ONLY if c not in self.columns)]

    # -- training ----------------------------------------------------------------------------

    @classmethod
    def train(
        cls, candidates: pa.Table, *, settings: ResolutionSettings, columns: Sequence[str]
    ) -> MatchModel:
        """Estimate a model on `candidates` (`unique_id` plus the attribute `columns`)."""
        available = [c for c in columns if c in candidates.column_names]
        columns = [c for c in available if c not in BLOCKING_ONLY]
        if not columns:
            raise ValueError("no columns to compare: map at least one person attribute")
        rules = usable_rules(settings.blocking_rules, available)
        if not rules:
            raise ValueError(
                f"none of the blocking rules {settings.blocking_rules} applies to the columns "
                f"{available}; add a rule on them to resolution.blocking_rules"
            )
        creator = SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="unique_id",
            comparisons=[_comparison(c) for c in columns],
            blocking_rules_to_generate_predictions=rules,
            retain_intermediate_calculation_columns=False,
            retain_matching_columns=False,
        )
        linker, db = _linker(candidates, creator)
        prior_rules = usable_rules(["l.email = r.email", "l.phone = r.phone"], columns)
        if prior_rules and _count(linker, prior_rules):
            linker.training.estimate_probability_two_random_records_match(prior_rules, recall=0.7)
        linker.training.estimate_u_using_random_sampling(
            max_pairs=settings.max_pairs_u, seed=settings.seed
        )
        for rule in usable_rules(settings.em_blocking_rules, available):
            _expectation_maximisation(linker, rule, max_pairs=settings.max_pairs_em)
        tf = {
            c: linker.table_management.compute_tf_table(c).as_pyarrow_table()
            for c in TF_COLUMNS
            if c in columns
        }
        model = cls(linker.misc.save_model_to_json(), tf)
        db.duckdb_con.close()
        return model

    # -- persistence -------------------------------------------------------------------------

    def save(self, folder: Path) -> Path:
        """Write `model.json` and `tf_<column>.parquet` into `folder`; returns the JSON path."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MODEL_FILE
        path.write_text(json.dumps(self.settings, indent=2))
        for column, table in self.term_frequencies.items():
            pq.write_table(table, folder / f"tf_{column}.parquet")
        return path

    @classmethod
    def load(cls, folder: Path) -> MatchModel | None:
        """The model saved in `folder`, or None when there is none."""
        path = folder / MODEL_FILE
        if not path.exists():
            return None
        tf = {p.stem.removeprefix("tf_"): pq.read_table(p) for p in folder.glob("tf_*.parquet")}
        return cls(json.loads(path.read_text()), tf)

    # -- prediction --------------------------------------------------------------------------

    def check_blocking(
        self, tables: Sequence[pa.Table], *, max_comparisons: int, link_type: str = "dedupe_only"
    ) -> int:
        """Count the comparisons the blocking rules generate; raise when above the cap."""
        db = DuckDBAPI()
        frames = [db.register(t) for t in tables]
        n_records = sum(t.num_rows for t in tables)
        counts = count_comparisons_from_blocking_rules(
            frames if len(frames) > 1 else frames[0],
            blocking_rules=self.settings["blocking_rules_to_generate_predictions"],
            link_type=link_type,
            record_sample_proportion=1.0 if n_records <= 200_000 else 0.2,
        )
        db.duckdb_con.close()
        total = int(counts[-1]["cumulative_comparison_count"]) if counts else 0
        if total > max_comparisons:
            worst = max(counts, key=lambda c: c["marginal_comparison_count"])
            raise BlockingTooLoose(
                f"blocking rules would generate {total:,} comparisons, more than "
                f"max_comparisons={max_comparisons:,}; the loosest rule is "
                f"{worst['blocking_rule']!r} ({worst['marginal_comparison_count']:,}). "
                "Tighten resolution.blocking_rules or raise resolution.max_comparisons."
            )
        return total

    def predict(self, candidates: pa.Table, *, threshold: float) -> pa.Table:
        """Scored pairs within `candidates` with match probability at least `threshold`."""
        linker, db = _linker(candidates, self.settings, self.term_frequencies)
        scored = linker.inference.predict(threshold_match_probability=threshold)
        return _collect(scored, db)

    def predict_new(self, existing: pa.Table, new: pa.Table, *, threshold: float) -> pa.Table:
        """Pairs between `new` and `existing` records and within `new` (incremental linking)."""
        db = DuckDBAPI()
        old_frame, new_frame = db.register(existing), db.register(new)
        linker = Linker(old_frame, self.settings, log_level=logging.WARNING)
        _register_tf(linker, db, self.term_frequencies)
        between = linker.inference.predict_between(
            new_frame, old_frame, threshold_match_probability=threshold, warning_mode="never"
        ).as_pyarrow_table()
        within = linker.inference.predict_within(
            new_frame, threshold_match_probability=threshold, warning_mode="never"
        ).as_pyarrow_table()
        db.duckdb_con.close()
        return pa.concat_tables([t.select(PREDICTION_COLUMNS) for t in (between, within)])

    def score_pair(self, left: dict[str, Any], right: dict[str, Any]) -> tuple[dict, Any]:
        """Score two records (`unique_id` and the compared columns, as text).

        Returns the scored row and Splink's waterfall chart of it.
        """
        explained = dict(self.settings, retain_intermediate_calculation_columns=True)
        explained["retain_matching_columns"] = True
        schema = pa.schema([(c, pa.string()) for c in ["unique_id", *self.record_columns]])
        db = DuckDBAPI()
        sides = [db.register(pa.Table.from_pylist([r], schema=schema)) for r in (left, right)]
        linker = Linker(sides[0], explained, log_level=logging.WARNING)
        _register_tf(linker, db, self.term_frequencies)
        row = linker.inference.score_pair(*sides).as_record_list()[0]
        chart = linker.visualisations.waterfall_chart([row], filter_nulls=False)
        db.duckdb_con.close()
        return row, chart

    def charts(self) -> dict[str, str]:
        """Splink's match-weights and m/u charts of the model, as self-contained HTML."""
        empty = pa.table(
            {c: pa.array([], pa.string()) for c in ["unique_id", *self.record_columns]}
        )
        linker, db = _linker(empty, self.settings)
        charts = {
            "match_weights": linker.visualisations.match_weights_chart().to_html(inline=True),
            "m_u_parameters": linker.visualisations.m_u_parameters_chart().to_html(inline=True),
        }
        db.duckdb_con.close()
        return charts


def _count(linker: Linker, rules: list[str]) -> int:
    counts = linker.blocking_analysis.count_comparisons_from_blocking_rules(
        rules, record_sample_proportion=1.0
    )
    return int(counts[-1]["cumulative_comparison_count"]) if counts else 0


def _expectation_maximisation(linker: Linker, rule: str, *, max_pairs: float) -> None:
    """One EM session estimating m; skipped (with a warning) when its block is too thin."""
    n_pairs = _count(linker, [rule])
    if n_pairs < MIN_EM_PAIRS:
        logger.warning("EM on %r skipped: only %d pairs", rule, n_pairs)
        return
    saved = copy.deepcopy(linker._settings_obj.core_model_settings)
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, max_pairs=max_pairs, estimate_without_term_frequencies=True
        )
    except (ValueError, SplinkException) as error:  # a level never observed in the block
        linker._settings_obj.core_model_settings = saved
        logger.warning("EM on %r skipped: %s", rule, error)


def _linker(
    table: pa.Table,
    settings: SettingsCreator | dict[str, Any],
    term_frequencies: dict[str, pa.Table] | None = None,
) -> tuple[Linker, DuckDBAPI]:
    db = DuckDBAPI()
    linker = Linker(db.register(table), settings, log_level=logging.WARNING)
    _register_tf(linker, db, term_frequencies or {})
    return linker, db


def _register_tf(linker: Linker, db: DuckDBAPI, term_frequencies: dict[str, pa.Table]) -> None:
    for column, table in term_frequencies.items():
        linker.table_management.register_term_frequency_lookup(db.register(table), column)


def _collect(scored, db: DuckDBAPI) -> pa.Table:
    table = scored.as_pyarrow_table().select(PREDICTION_COLUMNS)
    db.duckdb_con.close()
    return table
