"""Training speed: `cip train`'s flow on a demo data folder, wall and CPU seconds per stage.

Each repeat copies the data folder (built by `cip run --until features`; `--build` makes
one), trains there in a fresh Python process (`pipelines.flows.train.run`, what `cip
train` runs, imports included) and times its stages by wrapping the functions that do
them: imports, feature snapshots at the cutoffs, Feast point-in-time retrieval,
label-free fits (BG/NBD, Pareto/NBD, Gamma-Gamma), LightGBM search (the candidates and
the best on every row), refit, MLflow logging and registration; the rest (labels, the
label-free outputs, deciles, metrics) is "other". Prints a table of medians over the
repeats and the load average before and after, since the machine is shared.

    .venv/bin/python benchmarks/bench_train.py --data /tmp/train_demo [--repeat 3]
    .venv/bin/python benchmarks/bench_train.py --data /tmp/train_demo --build   # first
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("imports", "snapshots", "feast", "label-free fits", "search", "refit", "logging")


def _timed(stage: str, spent: dict[str, list[float]], func):  # noqa: ANN001, ANN202
    """`func`, adding its wall and CPU seconds to `spent[stage]` (outermost call only)."""
    active = []

    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if active:
            return func(*args, **kwargs)
        active.append(True)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return func(*args, **kwargs)
        finally:
            spent[stage][0] += time.perf_counter() - wall
            spent[stage][1] += time.process_time() - cpu
            active.pop()

    return wrapper


def one(data: Path) -> dict[str, list[float]]:
    """Train once in this process on `data`; wall and CPU seconds per stage."""
    os.environ["CIP_DATA_DIR"] = str(data)
    wall, cpu = time.perf_counter(), time.process_time()
    import models.btyd
    import models.datasets
    import models.training
    import models.workflow
    from pipelines.config import Settings
    from pipelines.flows import train

    spent = {stage: [0.0, 0.0] for stage in STAGES}
    spent["imports"] = [time.perf_counter() - wall, time.process_time() - cpu]
    patches = [
        (models.workflow, "build_snapshots", "snapshots"),
        (models.datasets, "training_set", "feast"),
        (models.btyd.BTYDModel, "fit", "label-free fits"),
        (models.training, "search", "search"),
        (models.workflow, "refit_model", "refit"),
        (train, "_register", "logging"),
    ]
    for owner, name, stage in patches:
        setattr(owner, name, _timed(stage, spent, getattr(owner, name)))
    begun, begun_cpu = time.perf_counter(), time.process_time()
    outcome = train.run(Settings(data_dir=data))
    total = [time.perf_counter() - begun, time.process_time() - begun_cpu]
    spent["other"] = [t - sum(spent[s][i] for s in STAGES[1:]) for i, t in enumerate(total)]
    spent["total"] = [total[0] + spent["imports"][0], total[1] + spent["imports"][1]]
    spent["choices"] = [one.model.kind for one in outcome.fitted.values()]
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="data folder after features")
    parser.add_argument("--build", action="store_true", help="build it first (cip run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.data)))
        return
    if args.build:
        cip = Path(sys.executable).with_name("cip")
        env = {**os.environ, "CIP_DATA_DIR": str(args.data)}
        subprocess.run([str(cip), "run", "--until", "features"], env=env, check=True)
    from rich.console import Console
    from rich.table import Table

    loads, runs = [os.getloadavg()], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=args.data.parent) as scratch:
            copy = Path(scratch) / "data"
            shutil.copytree(args.data, copy)
            out = subprocess.run(
                [sys.executable, __file__, "--data", str(copy), "--one"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        loads.append(os.getloadavg())
    table = Table(title=f"cip train on {args.data}: medians of {len(runs)}")
    for column in ("stage", "wall s", "CPU s", "CPU s per run"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in (*STAGES, "other", "total"):
        wall, cpu = (statistics.median(r[stage][i] for r in runs) for i in (0, 1))
        table.add_row(
            stage,
            f"{wall:.1f}",
            f"{cpu:.1f}",
            " / ".join(f"{r[stage][1]:.1f}" for r in runs),
        )
    console = Console()
    console.print(table)
    console.print(f"models chosen (churn, ltv, orders): {[r['choices'] for r in runs]}")
    console.print(
        "load average (1, 5, 15 min) before and after each run: "
        + "; ".join(", ".join(f"{x:.1f}" for x in load) for load in loads)
    )


if __name__ == "__main__":
    main()
