"""Backtest grid: months of history x horizons, the champion against the label-free baselines.

For each cell the as-of date is the last day of the first N months of the order history
(the business is N months old), and `models.run_backtest` fits every model on those
months and compares them on the next H days. Prints one markdown row per cell:
the models chosen, revenue MAE, any-purchase ROC-AUC and total revenue error of the
champion against the best label-free baseline (the better of BG/NBD and Pareto/NBD
on each metric), and whether the targets hold (champion better on MAE and AUC, total
within +-10%).

    .venv/bin/python benchmarks/bench_backtests.py --data-dir /tmp/u20k   # after `cip run
        --until features` there (generate with history_start 2024-01-01: 24 + 6 months)
    .venv/bin/python benchmarks/bench_backtests.py --data-dir /tmp/sim --simulate 10000

`--simulate N` first writes an order history unlike the generated universe into the data
folder and loads it the way a user would (`cip load --map` on a CSV, `cip resolve`,
`cip features`): N customers all acquired in one quarter, buying by a Pareto/NBD process
(Poisson purchases at a Gamma-distributed rate until an exponential lifetime ends, with
its own Gamma-distributed death rate) with Gamma-distributed spend, no seasonality.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

import features
import models
import warehouse
from pipelines.config import Settings

TARGET_TOTAL = 0.10


def simulate(settings: Settings, *, customers: int, seed: int = 3) -> None:
    """A Pareto/NBD cohort history, loaded, resolved and featurized like a user's export."""
    from pipelines.commands import features as features_stage
    from pipelines.commands import resolve

    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-31")
    born = rng.uniform(0, 90, customers)  # acquired in the first quarter
    rate = rng.gamma(0.55, 1 / 20, customers)  # purchases a day while alive
    death = rng.gamma(0.6, 1 / 300, customers)  # deaths a day
    life = rng.exponential(1 / death)
    value = rng.gamma(3.0, 20.0, customers)  # the customer's mean order value
    horizon = (end - start).days
    rows = []
    for c in range(customers):
        t, stop = born[c], min(born[c] + life[c], horizon)
        while t < stop:
            amount = round(float(rng.gamma(4.0, value[c] / 4.0)), 2)
            rows.append((f"S{c:06d}", start + pd.Timedelta(days=float(t)), amount))
            t += rng.exponential(1 / rate[c])
    orders = pd.DataFrame(rows, columns=["cust", "order_ts", "total"])
    orders["order_ts"] = orders["order_ts"].dt.strftime("%m/%d/%Y %H:%M")
    export = settings.data_dir / "export" / "orders-export.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    orders.to_csv(export, index=False)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        report = warehouse.load_file(
            con,
            path=export,
            source="orders",
            mapping={"customer_id": "cust", "ordered_at": "order_ts", "amount": "total"},
        )
    finally:
        con.close()
    print(f"simulated {customers:,} customers, {report.rows_loaded:,} orders loaded")
    resolve.stage(settings)
    features_stage.stage(settings)


def grid(settings: Settings, *, months: list[int], horizons: list[int]) -> list[dict]:
    con = warehouse.connect(settings.paths.warehouse)
    try:
        first, _ = models.data_span(con, orders=models.orders_sql())
        store = features.open_store(feast_dir=settings.paths.feast, settings=settings.features)
        start = first.replace(day=1)
        cells = []
        for n in months:
            as_of = (pd.Timestamp(start) + pd.DateOffset(months=n)).date() - timedelta(days=1)
            for h in horizons:
                began = time.perf_counter()
                result = models.run_backtest(
                    con,
                    store=store,
                    feast_dir=settings.paths.feast,
                    feature_settings=settings.features,
                    settings=settings.models,
                    as_of=as_of,
                    horizon_days=h,
                )
                cells.append(_cell(n, h, as_of, result, time.perf_counter() - began))
                print(_row(cells[-1]), flush=True)
    finally:
        con.close()
    return cells


def _cell(months: int, horizon: int, as_of: date, result: models.Backtest, seconds: float) -> dict:
    table = result.metrics
    free = table.loc[[m for m in ("bgnbd", "pnbd") if m in table.index]]
    champion = table.loc["champion"]
    kinds = {task: why.split(":")[0] for task, why in result.choices.items()}
    return {
        "months": months,
        "horizon": horizon,
        "as_of": str(as_of),
        "customers": result.customers,
        "models": "/".join(kinds[t] for t in ("churn", "ltv", "orders")),
        "mae": champion["revenue_mae"],
        "best_free_mae": free["revenue_mae"].min(),
        "auc": champion["any_purchase_roc_auc"],
        "best_free_auc": free["any_purchase_roc_auc"].max(),
        "total": champion["revenue_total_error"],
        "bgnbd_total": table.loc["bgnbd", "revenue_total_error"],
        "orders_mae": champion["orders_mae"],
        "best_free_orders_mae": free["orders_mae"].min(),
        "seconds": seconds,
        "metrics": table.to_dict(orient="index"),
    }


HEADER = (
    "| history | horizon | as of | customers | churn/ltv/orders model | revenue MAE: champion "
    "vs best label-free | any-purchase AUC: champion vs best label-free | total revenue "
    "error: champion (BG/NBD) | orders MAE: champion vs best label-free | targets | s |\n"
    "|---|---:|---|---:|---|---:|---:|---:|---:|---|---:|"
)


def _row(c: dict) -> str:
    met = [
        c["mae"] < c["best_free_mae"],
        c["auc"] > c["best_free_auc"],
        abs(c["total"]) <= TARGET_TOTAL,
    ]
    marks = " ".join(
        f"{name} {'yes' if ok else '**no**'}"
        for name, ok in zip(("MAE", "AUC", "total"), met, strict=True)
    )
    return (
        f"| {c['months']} months | {c['horizon']} d | {c['as_of']} | {c['customers']:,} | "
        f"{c['models']} | {c['mae']:.1f} vs {c['best_free_mae']:.1f} | {c['auc']:.4f} vs "
        f"{c['best_free_auc']:.4f} | {c['total']:+.1%} ({c['bgnbd_total']:+.1%}) | "
        f"{c['orders_mae']:.3f} vs {c['best_free_orders_mae']:.3f} | {marks} | "
        f"{c['seconds']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--simulate", type=int, help="simulate this many customers first")
    parser.add_argument("--months", type=int, nargs="+", default=[6, 9, 12, 18, 24])
    parser.add_argument("--horizons", type=int, nargs="+", default=[90, 180])
    parser.add_argument("--json", type=Path, help="write every cell's metrics here")
    args = parser.parse_args()
    os.environ["CIP_DATA_DIR"] = str(args.data_dir)
    settings = Settings(data_dir=args.data_dir)
    if args.simulate:
        simulate(settings, customers=args.simulate)
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(HEADER)
    cells = grid(settings, months=args.months, horizons=args.horizons)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1, default=float))


if __name__ == "__main__":
    main()
