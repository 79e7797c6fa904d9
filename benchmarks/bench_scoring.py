"""Batch scoring speed: 1,000,000 customers through the champion scorer, and the cost of reasons.

With `--data-dir`, loads the champions `cip train` registered in that data
folder; otherwise trains a churn and an LTV Booster of a chosen size (`--trees`,
`--leaves`, `--depth`) and wraps them in `models.Champions`. Then it times:

- scoring N customers (calibrated churn probability, deciles, Tweedie LTV, expected orders,
  each model computing the label-free outputs it reads), no reasons;
- appending those N rows to a DuckDB `scores` table;
- reasons (exact TreeSHAP via `pred_contrib`) per row, on a sample, per model.

Prints wall and CPU seconds and the load average, since the machine is shared.

    .venv/bin/python benchmarks/bench_scoring.py [--rows 1000000] [--data-dir data]
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

from models import BTYD_INPUTS, BTYDModel, ChampionModel, Champions, append_scores, load_champions
from models.calibration import PlattCalibrator
from models.metrics import decile_cuts

# Label-free parameters of the order of those fitted on the generated universe.
BTYD = {
    "kind": "bgnbd",
    "params": {"r": 0.65, "alpha": 55.0, "a": 0.4, "b": 2.3, "p": 7.9, "q": 1.2, "v": 8.4},
}


def _champions(features: int, trees: int, leaves: int, depth: int, seed: int) -> Champions:
    """Three LightGBM champions over `features` random features (the first four named as the
    label-free model's inputs) and the label-free outputs, as the registry would hold them."""
    rng = np.random.default_rng(seed)
    X = rng.gamma(2.0, 10.0, (20_000, features))
    names = [*BTYD_INPUTS, *(f"f{i:02d}" for i in range(features - len(BTYD_INPUTS)))]
    btyd = BTYDModel.from_dict(BTYD)
    signal = X[:, :5].sum(axis=1)
    churned = (rng.random(len(X)) < 1 / (1 + np.exp((signal - signal.mean()) / 20))).astype(float)
    revenue = np.where(rng.random(len(X)) < 0.4, signal * rng.lognormal(0, 0.5, len(X)), 0.0)
    orders = rng.poisson(signal / signal.mean())
    models = {}
    for task, objective, y in (
        ("churn", "binary", churned),
        ("ltv", "tweedie", revenue),
        ("orders", "poisson", orders),
    ):
        model = ChampionModel(
            task=task, version="bench", kind="lightgbm", btyd=btyd, booster=None,
            feature_names=names, decile_cuts=np.array([]), calibrator=None,
            feature_service=f"{task}_v1", horizon_days=90,
        )  # fmt: skip
        matrix = model.model_matrix(X)
        params = {"objective": objective, "num_leaves": leaves, "max_depth": depth}
        params.update(verbosity=-1, num_threads=1, min_child_samples=5)
        booster = lgb.train(params, lgb.Dataset(matrix, y), num_boost_round=trees)
        raw = booster.predict(matrix[:5000])
        models[task] = ChampionModel(
            task=task,
            version="bench",
            kind="lightgbm",
            btyd=btyd,
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
    parser.add_argument("--data-dir", type=Path, help="score with this folder's champions")
    parser.add_argument("--features", type=int, default=56)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--leaves", type=int, default=31)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--reason-sample", type=int, default=500)
    args = parser.parse_args()

    results: list[tuple[str, float, float]] = []
    if args.data_dir:
        uri = f"sqlite:///{(args.data_dir / 'mlflow' / 'mlflow.db').resolve()}"
        champions = _timed("load champions", results, lambda: load_champions(tracking_uri=uri))
    else:
        champions = _timed(
            "train two benchmark models",
            results,
            lambda: _champions(args.features, args.trees, args.leaves, args.depth, seed=1),
        )
    names = champions.feature_names
    rng = np.random.default_rng(2)
    matrix = rng.gamma(2.0, 10.0, (args.rows, len(names)))
    matrix[rng.random(matrix.shape) < 0.05] = np.nan  # missing features, as in real data
    frame = pd.DataFrame(matrix, columns=names)
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
    per_row = {}
    for model in (champions.churn, champions.ltv):
        if model.booster is None:
            continue  # a label-free champion: nothing to explain
        sample = frame[model.feature_names].to_numpy()[: args.reason_sample]
        _timed(
            f"{model.task} reasons, {args.reason_sample} rows",
            results,
            lambda model=model, sample=sample: model.reasons(sample, k=3),
        )
        per_row[model.task] = results[-1][1] / args.reason_sample

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    for model in champions.models:
        if model.booster is None:
            print(f"{model.task} v{model.version}: the label-free model")
            continue
        trees, leaves = model.booster.num_trees(), model.booster.dump_model()["tree_info"]
        mean_leaves = np.mean([t["num_leaves"] for t in leaves])
        print(
            f"{model.task} v{model.version}: {trees} trees of {mean_leaves:.0f} leaves on "
            f"average, {len(model.feature_names)} features"
        )
    print(f"load average {load}")
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
