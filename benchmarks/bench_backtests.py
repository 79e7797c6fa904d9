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


def pnbd_cohort(customers: int, *, seed: int = 3) -> pd.DataFrame:
    """A Pareto/NBD world: one acquisition quarter (2023-Q1), Poisson purchases at a
    Gamma(0.55, 1/20) daily rate until an exponential lifetime (Gamma(0.6, 1/300) death
    rate) ends, Gamma spend around each customer's mean; no seasonality, no fading."""
    rng = np.random.default_rng(seed)
    start, days = pd.Timestamp("2023-01-01"), 1095
    born = rng.uniform(0, 90, customers)
    rate = rng.gamma(0.55, 1 / 20, customers)
    life = rng.exponential(1 / rng.gamma(0.6, 1 / 300, customers))
    value = rng.gamma(3.0, 20.0, customers)
    rows = []
    for c in range(customers):
        t, stop = born[c], min(born[c] + life[c], days)
        while t < stop:
            rows.append((f"S{c:06d}", t, round(float(rng.gamma(4.0, value[c] / 4.0)), 2)))
            t += rng.exponential(1 / rate[c])
    orders = pd.DataFrame(rows, columns=["cust", "t", "total"])
    orders["order_ts"] = (start + pd.to_timedelta(orders.pop("t"), unit="D")).dt.strftime(
        "%m/%d/%Y %H:%M"
    )
    return orders


def seasonal_shop(customers: int, *, seed: int = 5) -> pd.DataFrame:
    """A gift shop unlike both: customers acquired all through three years (more of them in
    December), log-normal purchase rates (a heavier tail than Gamma), Weibull lifetimes
    with a falling hazard (shape 0.7: most leave early), a strong year (December up to
    3.5x, a summer low of 0.6x) and week (weekends 1.6x), larger baskets in December."""
    rng = np.random.default_rng(seed)
    start, days = pd.Timestamp("2022-01-01"), 1095

    calendar = pd.date_range(start, periods=days + 1, freq="D")
    doy, weekday = calendar.dayofyear.to_numpy(), calendar.dayofweek.to_numpy()
    peak = 2.5 * np.exp(-0.5 * ((doy - 350) / 12) ** 2)
    summer = 0.4 * np.exp(-0.5 * ((doy - 210) / 25) ** 2)
    by_day = (1 + peak - summer) * np.where(weekday >= 5, 1.6, 0.76)

    def season(t: np.ndarray) -> np.ndarray:
        return by_day[np.floor(t).astype(int)]

    top = 3.5 * 1.6
    candidates = rng.uniform(0, days, 4 * customers)
    born = candidates[rng.random(len(candidates)) * top < season(candidates)][:customers]
    n = len(born)
    rate = np.minimum(rng.lognormal(np.log(1 / 90), 1.1, n), 0.5)
    life = 400 * rng.weibull(0.7, n)
    value = rng.lognormal(np.log(45), 0.6, n)
    owner, times = [], []
    for c in range(n):
        stop = min(born[c] + life[c], days)
        count = rng.poisson(rate[c] * top * (stop - born[c]))
        t = np.sort(rng.uniform(born[c], stop, count))
        t = t[rng.random(count) * top < season(t)]
        owner.append(np.full(len(t) + 1, c))
        times.append(np.concatenate([[born[c]], t]))
    owner, times = np.concatenate(owner), np.concatenate(times)
    december = (start + pd.to_timedelta(np.floor(times), unit="D")).month == 12
    amount = rng.gamma(5.0, value[owner] * np.where(december, 1.2, 1.0) / 5.0)
    return pd.DataFrame(
        {
            "client": [f"G{c:06d}" for c in owner],
            "day": (start + pd.to_timedelta(times, unit="D")).strftime("%Y-%m-%d %H:%M:%S"),
            "value": np.round(amount, 2),
        }
    )


def cdnow() -> pd.DataFrame:
    """CDNOW (shipped with lifetimes): 23,570 customers of a CD retailer, all acquired in
    1997-Q1, their 69,659 orders to June 1998 (day, CDs, dollars): real retail."""
    from importlib.resources import files

    path = files("lifetimes") / "datasets" / "CDNOW_master.txt"
    frame = pd.read_csv(
        str(path), sep=r"\s+", names=["id", "date", "cds", "dollars"], skiprows=1, dtype=str
    )
    return frame[["id", "date", "dollars"]]


HISTORIES = {
    "pnbd": (pnbd_cohort, {"customer_id": "cust", "ordered_at": "order_ts", "amount": "total"}),
    "seasonal": (seasonal_shop, {"customer_id": "client", "ordered_at": "day", "amount": "value"}),
    "cdnow": (cdnow, {"customer_id": "id", "ordered_at": "date", "amount": "dollars"}),
}


def simulate(settings: Settings, *, kind: str, customers: int) -> None:
    """Write an order history of `kind` as a CSV export, load it the way a user would
    (`cip load --map`), resolve it and build the features."""
    from pipelines.commands import features as features_stage
    from pipelines.commands import resolve

    make, mapping = HISTORIES[kind]
    orders = make() if kind == "cdnow" else make(customers)
    export = settings.data_dir / "export" / f"orders-{kind}.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    orders.to_csv(export, index=False)
    con = warehouse.connect(settings.paths.warehouse)
    try:
        report = warehouse.load_file(con, path=export, source="orders", mapping=mapping)
    finally:
        con.close()
    print(f"{kind}: {report.rows_loaded:,} orders loaded, {report.rows_quarantined:,} quarantined")
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
    parser.add_argument("--simulate", choices=sorted(HISTORIES), help="load this history first")
    parser.add_argument("--customers", type=int, default=10_000, help="simulated customers")
    parser.add_argument("--months", type=int, nargs="+", default=[6, 9, 12, 18, 24])
    parser.add_argument("--horizons", type=int, nargs="+", default=[90, 180])
    parser.add_argument("--json", type=Path, help="write every cell's metrics here")
    args = parser.parse_args()
    os.environ["CIP_DATA_DIR"] = str(args.data_dir)
    settings = Settings(data_dir=args.data_dir)
    if args.simulate:
        simulate(settings, kind=args.simulate, customers=args.customers)
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(HEADER)
    cells = grid(settings, months=args.months, horizons=args.horizons)
    if args.json:
        args.json.write_text(json.dumps(cells, indent=1, default=float))


if __name__ == "__main__":
    main()
