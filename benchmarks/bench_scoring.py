"""Batch scoring speed: 1,000,000 customers through the champion scorer, and the cost of reasons.

Trains a churn and an LTV Booster of the size `cip train` picks on the generated
universe (about 450 trees of 48 leaves on 56 features; see `--trees`), wraps
them in `models.Champions` as `load_champions` would, and times:

- scoring N customers (calibrated churn probability, deciles, Tweedie LTV), no reasons;
- appending those N rows to a DuckDB `scores` table;
- reasons (exact TreeSHAP via `pred_contrib`) per row, on a sample, per model.

Prints wall and CPU seconds and the load average, since the machine is shared.

    .venv/bin/python benchmarks/bench_scoring.py [--rows 1000000] [--trees 450]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from models import ChampionModel, Champions, append_scores
from models.calibration import PlattCalibrator
from models.metrics import decile_cuts


def _booster(objective: str, X: np.ndarray, y: np.ndarray, trees: int, leaves: int) -> lgb.Booster:
    params = {"objective": objective, "num_leaves": leaves, "verbosity": -1, "num_threads": 1}
    params["min_child_samples"] = 5
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=trees)


def _champions(features: int, trees: int, leaves: int, seed: int) -> Champions:
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, 10.0, (20_000, features))
    signal = X[:, :5].sum(axis=1)
    churned = (rng.random(len(X)) < 1 / (1 + np.exp((signal - signal.mean()) / 20))).astype(float)
    revenue = np.where(rng.random(len(X)) < 0.4, signal * rng.lognormal(0, 0.5, len(X)), 0.0)
    names = [f"f{i:02d}" for i in range(features)]
    models = {}
    for task, objective, y in (("churn", "binary", churned), ("ltv", "tweedie", revenue)):
        booster = _booster(objective, X, y, trees, leaves)
        raw = booster.predict(X[:5000])
        models[task] = ChampionModel(
            task=task,
            version="bench",
            booster=booster,
            feature_names=names,
            decile_cuts=decile_cuts(raw),
            calibrator=PlattCalibrator().fit(raw, y[:5000]) if task == "churn" else None,
            feature_service=f"{task}_v1",
            horizon_days=90,
        )
    return Champions(**models)


def _timed(step: str, results: list[tuple[str, float, float]], action):  # noqa: ANN001, ANN202
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    results.append((step, time.perf_counter() - wall, time.process_time() - cpu))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=56)
    parser.add_argument("--trees", type=int, default=450)
    parser.add_argument("--leaves", type=int, default=48)
    parser.add_argument("--reason-sample", type=int, default=500)
    args = parser.parse_args()

    results: list[tuple[str, float, float]] = []
    champions = _timed(
        "train two benchmark models",
        results,
        lambda: _champions(args.features, args.trees, args.leaves, seed=1),
    )
    rng = np.random.default_rng(2)
    matrix = rng.gamma(2.0, 10.0, (args.rows, args.features))
    matrix[rng.random(matrix.shape) < 0.05] = np.nan  # missing features, as in real data
    frame = pd.DataFrame(matrix, columns=champions.churn.feature_names)
    frame.insert(0, "customer_id", [f"c{i}" for i in range(args.rows)])

    scores = _timed(f"score {args.rows:,} customers", results, lambda: champions.score(frame))
    scores.insert(0, "customer_id", frame["customer_id"].to_numpy())
    with tempfile.TemporaryDirectory() as folder:
        con = duckdb.connect(str(Path(folder) / "bench.duckdb"))
        _timed(
            f"append {args.rows:,} rows to scores",
            results,
            lambda: append_scores(
                con,
                scores,
                scoring_id="bench",
                versions=champions.versions,
                feature_service="churn_v1+ltv_v1",
                as_of=datetime(2026, 11, 1),
                scored_at=datetime.now(),
            ),
        )
        con.close()
    sample = matrix[: args.reason_sample]
    per_row = {}
    for model in (champions.churn, champions.ltv):
        _timed(
            f"{model.task} reasons, {args.reason_sample} rows",
            results,
            lambda model=model: model.reasons(sample, k=3),
        )
        per_row[model.task] = results[-1][1] / args.reason_sample

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.trees} trees x {args.leaves} leaves, {args.features} features; load {load}")
    print("| step | wall s | CPU s |\n|---|---:|---:|")
    for step, wall, cpu in results:
        print(f"| {step} | {wall:.2f} | {cpu:.2f} |")
    top_decile = args.rows // 10
    for task, seconds in per_row.items():
        print(
            f"{task} reasons: {seconds * 1000:.2f} ms per row; the top decile of "
            f"{args.rows:,} ({top_decile:,} rows) would take {seconds * top_decile:.0f} s"
        )


if __name__ == "__main__":
    main()
