"""The Splink model: its settings as data, training, the saved JSON, and prediction.

`MatchModel` wraps a Splink settings dict (comparisons, blocking rules and
trained parameters; see `resolution.configure` for how each is chosen) plus
the term-frequency tables computed when it was trained. It is saved as Splink
JSON (`model.json`) with the term-frequency tables as parquet beside it, so a
later run (full or incremental) scores every pair exactly as the run that
trained it, and a person can read, edit and reuse it (`cip resolve file
--settings`).

Splink runs in its own in-memory DuckDB: the warehouse never sees its
intermediate tables. Before predicting, the blocking rules' comparison count
is measured with Splink's blocking analysis and prediction is refused when it
exceeds `max_comparisons`.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from splink import Linker
from splink.internals.database_api import DatabaseAPI

from resolution.blocking import count_rules, with_marginals
from resolution.comparisons import NICKNAME_SUFFIX
from resolution.configure import ModelChoices, add_nicknames, configure
from resolution.profile import TableProfile
from resolution.settings import ResolutionSettings
from warehouse.engine import DUCKDB, Engine, release, splink_api

__all__ = ["MATCH_COLUMNS", "BlockingTooLoose", "MatchModel"]

# Person attributes of the platform's records given to Splink.
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
MODEL_FILE = "model.json"
PREDICTION_COLUMNS = ["unique_id_l", "unique_id_r", "match_weight", "match_probability"]

logging.getLogger("splink").setLevel(logging.WARNING)


class BlockingTooLoose(RuntimeError):
    """The blocking rules would generate more comparisons than allowed."""


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
        """The columns a record needs to be scored: those compared and those blocked on."""
        compared = {
            column
            for comparison in self.settings["comparisons"]
            for level in comparison["comparison_levels"]
            for column in re.findall(r'"?(\w+?)_l\b"?', level["sql_condition"])
            if not column.endswith(NICKNAME_SUFFIX)
        }
        blocked = {
            column
            for rule in self.settings["blocking_rules_to_generate_predictions"]
            for column in re.findall(r"\b[lr]\.(\w+)", _rule_sql(rule))
        }
        return sorted(compared | blocked)

    # -- training ----------------------------------------------------------------------------

    @property
    def nickname_columns(self) -> list[str]:
        """Given-name columns whose nickname lists the comparisons read."""
        text = json.dumps(self.settings["comparisons"])
        return [c for c in self.columns if f"{c}{NICKNAME_SUFFIX}_l" in text]

    @classmethod
    def train(
        cls,
        candidates: pa.Table,
        *,
        settings: ResolutionSettings,
        profile: TableProfile,
    ) -> tuple[MatchModel, ModelChoices]:
        """Configure and train a model on `candidates` (`unique_id` plus profiled columns).

        Training samples (`max_pairs_u`, `max_pairs_em`), so it runs on DuckDB whatever the
        engine; scoring every blocked pair (`predict`) is what grows with the data."""
        trained, choices = configure(candidates, settings=settings, profile=profile)
        model = cls(trained)
        prepared = model.prepare(candidates)
        linker, db = _linker(prepared, trained)
        model.term_frequencies = {
            c: linker.table_management.compute_tf_table(c).as_pyarrow_table()
            for c in model.tf_columns
        }
        release(db)
        return model, choices

    @property
    def tf_columns(self) -> list[str]:
        """Columns whose exact matches are adjusted by term frequency."""
        return sorted(
            {
                level["tf_adjustment_column"]
                for comparison in self.settings["comparisons"]
                for level in comparison["comparison_levels"]
                if level.get("tf_adjustment_column")
            }
        )

    def prepare(self, table: pa.Table) -> pa.Table:
        """`table` with the derived columns the comparisons read (nickname lists)."""
        return add_nicknames(table, self.nickname_columns)

    def parameters(self) -> list[dict[str, Any]]:
        """One row per comparison level: label, m, u and match weight (log2 m/u)."""
        rows = []
        for comparison in self.settings["comparisons"]:
            for level in comparison["comparison_levels"]:
                if level.get("is_null_level"):
                    continue
                m, u = level.get("m_probability"), level.get("u_probability")
                weight = math.log2(m / u) if m and u else None
                rows.append(
                    {
                        "comparison": comparison["output_column_name"],
                        "level": level.get("label_for_charts") or level["sql_condition"],
                        "m": m,
                        "u": u,
                        "match_weight": weight,
                    }
                )
        return rows

    @property
    def prior(self) -> float:
        """The probability that two random records match."""
        return float(self.settings.get("probability_two_random_records_match", 1e-4))

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
        self,
        tables: Sequence[pa.Table],
        *,
        max_comparisons: int,
        link_type: str = "dedupe_only",
    ) -> None:
        """Refuse blocking rules that would generate more than `max_comparisons` pairs.

        The rules' counts alone (cheap, from block sizes) bound their union; only when
        that bound is above the cap is the union counted. (On DuckDB whatever the engine:
        it only counts the candidates' block sizes.)
        """
        db = splink_api()
        frames = [db.register(self.prepare(t)) for t in tables]
        frame = frames if len(frames) > 1 else frames[0]
        rules = [_rule_sql(r) for r in self.settings["blocking_rules_to_generate_predictions"]]
        try:
            alone = count_rules(frame, rules, link_type=link_type)
            if sum(r.comparisons for r in alone) <= max_comparisons:
                return
            union = with_marginals(frame, alone, link_type=link_type)
        finally:
            release(db)
        total = sum(r.marginal or 0 for r in union)
        if total > max_comparisons:
            worst = max(union, key=lambda r: r.marginal or 0)
            raise BlockingTooLoose(
                f"blocking rules would generate {total:,} comparisons, more than "
                f"max_comparisons={max_comparisons:,}; the loosest rule is "
                f"{worst.rule!r} ({worst.marginal:,}). "
                "Tighten the model's blocking rules or raise resolution.max_comparisons."
            )

    def predict(self, candidates: pa.Table, *, engine: Engine | None = None) -> pa.Table:
        """Every blocked pair within `candidates`, scored (with Splink on `engine`).

        Splink sees each `unique_id` as its rank among them (numbers join, sort and
        shuffle cheaper than text, and order the same way, so that every pair keeps its
        left and right); the pairs come back with the ids."""
        ids = pc.take(candidates["unique_id"], pc.sort_indices(candidates["unique_id"]))
        numbered = candidates.set_column(
            candidates.schema.get_field_index("unique_id"),
            "unique_id",
            pc.index_in(candidates["unique_id"], value_set=ids),
        )
        linker, db = _linker(
            self.prepare(numbered), self.settings, self.term_frequencies, engine=engine
        )
        scored = linker.inference.predict()
        table = (engine or DUCKDB).to_arrow(scored, columns=PREDICTION_COLUMNS)
        release(db)
        for side in ("unique_id_l", "unique_id_r"):
            table = table.set_column(
                table.schema.get_field_index(side), side, pc.take(ids, table[side])
            )
        return table

    def predict_new(self, existing: pa.Table, new: pa.Table) -> pa.Table:
        """Pairs between `new` and `existing` records and within `new`, scored (incremental)."""
        db = splink_api()
        old_frame, new_frame = db.register(self.prepare(existing)), db.register(self.prepare(new))
        linker = Linker(old_frame, self.settings, log_level=logging.WARNING)
        _register_tf(linker, db, self.term_frequencies)
        between = linker.inference.predict_between(
            new_frame, old_frame, warning_mode="never"
        ).as_pyarrow_table()
        within = linker.inference.predict_within(new_frame, warning_mode="never").as_pyarrow_table()
        release(db)
        return pa.concat_tables([t.select(PREDICTION_COLUMNS) for t in (between, within)])

    def score_pair(self, left: dict[str, Any], right: dict[str, Any]) -> tuple[dict, Any]:
        """Score two records (`unique_id` and the compared columns, as text).

        Returns the scored row and Splink's waterfall chart of it.
        """
        explained = dict(self.settings, retain_intermediate_calculation_columns=True)
        explained["retain_matching_columns"] = True
        schema = pa.schema([(c, pa.string()) for c in ["unique_id", *self.record_columns]])
        db = splink_api()
        sides = [
            db.register(self.prepare(pa.Table.from_pylist([r], schema=schema)))
            for r in (left, right)
        ]
        linker = Linker(sides[0], explained, log_level=logging.WARNING)
        _register_tf(linker, db, self.term_frequencies)
        row = linker.inference.score_pair(*sides).as_record_list()[0]
        chart = linker.visualisations.waterfall_chart([row], filter_nulls=False)
        release(db)
        return row, chart

    def charts(self) -> dict[str, str]:
        """Splink's match-weights and m/u charts of the model, as self-contained HTML."""
        empty = pa.table(
            {c: pa.array([], pa.string()) for c in ["unique_id", *self.record_columns]}
        )
        linker, db = _linker(self.prepare(empty), self.settings)
        charts = {
            "match_weights": linker.visualisations.match_weights_chart().to_html(inline=True),
            "m_u_parameters": linker.visualisations.m_u_parameters_chart().to_html(inline=True),
        }
        release(db)
        return charts


def _linker(
    table: pa.Table,
    settings: dict[str, Any],
    term_frequencies: dict[str, pa.Table] | None = None,
    *,
    engine: Engine | None = None,
) -> tuple[Linker, DatabaseAPI]:
    engine = engine or DUCKDB
    db = engine.splink_api()
    frame = engine.register(db, table)
    linker = Linker(frame, engine.splink_settings(settings), log_level=logging.WARNING)
    _register_tf(linker, db, term_frequencies or {})
    return linker, db


def _register_tf(linker: Linker, db: DatabaseAPI, term_frequencies: dict[str, pa.Table]) -> None:
    for column, table in term_frequencies.items():
        linker.table_management.register_term_frequency_lookup(db.register(table), column)


def _rule_sql(rule: str | dict[str, Any]) -> str:
    return rule["blocking_rule"] if isinstance(rule, dict) else rule
