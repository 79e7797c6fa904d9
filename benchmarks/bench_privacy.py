"""Benchmark: forgetting 1,000 people in one call on a built data folder (target < 60 s).

    .venv/bin/python benchmarks/bench_privacy.py --data data --people 1000

Works on a copy of `--data` (a folder `make demo` built: resolved, featurized, scored,
segmented, activated), picks `--people` customers with an e-mail at random (seed 0),
and forgets them by e-mail in one `privacy.forget` call. Prints a table with the wall
time, CPU time and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

from pipelines.config import load_settings
from pipelines.flows import privacy
from pipelines.relocate import relocate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--people", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.data.parent) as scratch:
        root = Path(scratch) / "data"
        shutil.copytree(args.data, root)
        settings = load_settings(data_dir=root)
        relocate(settings)
        with duckdb.connect(str(settings.paths.warehouse), read_only=True) as con:
            emails = [e for (e,) in con.execute(
                "SELECT email FROM profiles WHERE email IS NOT NULL ORDER BY customer_id"
            ).fetchall()]  # fmt: skip
        chosen = random.Random(0).sample(emails, min(args.people, len(emails)))
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        load_before = os.getloadavg()
        cpu, wall = time.process_time(), time.perf_counter()
        outcome = privacy.forget(
            settings, identifiers=[privacy.Identifier("email", e) for e in chosen]
        )
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        load_after = os.getloadavg()
    table = Table(title=f"Forgetting {len(chosen):,} people in one call")
    for column in ("status", "customers", "rows erased", "files rewritten", "data MiB",
                   "seconds", "CPU s", "load before", "load after"):  # fmt: skip
        table.add_column(column, justify="right")
    table.add_row(
        outcome.status, f"{outcome.customers:,}", f"{sum(outcome.rows_erased.values()):,}",
        f"{outcome.files_rewritten}", f"{size / 2**20:,.0f}", f"{wall:.1f}", f"{cpu:.1f}",
        " ".join(f"{x:.1f}" for x in load_before), " ".join(f"{x:.1f}" for x in load_after),
    )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
