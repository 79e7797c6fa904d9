"""Benchmark of `cip generate` and `cip load`: the synthetic universe written, then loaded.

    .venv/bin/python benchmarks/bench_generate_load.py [--people 20000 100000] [--seed 42]
        [--out benchmarks/out/generate]

For each size: generate the universe (`warehouse.synthetic.generate`) into a fresh folder,
then load every file into a fresh DuckDB warehouse (`warehouse.load_directory`). Each step
runs in its own process, so its peak memory (max RSS) and CPU time (all threads) are its
own; on a shared machine CPU seconds say more than wall seconds. Prints a rich table (people,
rows per source, seconds, CPU seconds, rows/s, peak memory) and a markdown table for
RESULTS.md.
The folders are deleted at the end (they hold gigabytes at 100,000 people).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from warehouse.sources import SOURCES  # noqa: E402

console = Console(width=170)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _finish(rows: dict[str, int], wall: float, cpu: float) -> tuple:
    """(rows, wall seconds, CPU seconds of all threads, peak RSS in KiB) of a step."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rows, time.perf_counter() - wall, _cpu() - cpu, peak


def _generate(people: int, seed: int, folder: str) -> tuple:
    from warehouse.settings import GenerateSettings
    from warehouse.synthetic import generate

    settings = GenerateSettings(people=people, seed=seed)
    wall, cpu = time.perf_counter(), _cpu()
    rows = generate(
        settings=settings, sources_dir=Path(folder) / "sources", truth_dir=Path(folder) / "truth"
    )
    return _finish(rows, wall, cpu)


def _load(folder: str) -> tuple:
    import warehouse

    wall, cpu = time.perf_counter(), _cpu()
    con = warehouse.connect(Path(folder) / "warehouse.duckdb")
    try:
        reports = warehouse.load_directory(con, directory=Path(folder) / "sources")
    finally:
        con.close()
    quarantined = sum(r.rows_quarantined for r in reports)
    if quarantined:
        console.print(f"[yellow]{quarantined:,} rows quarantined")
    return _finish({r.source: r.rows_loaded for r in reports}, wall, cpu)


def _in_child(function, *args):
    """Run one step in a fresh process (spawned, so memory figures are the step's own)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "generate")
    args = parser.parse_args()
    console.print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    results = []
    for people in args.people:
        folder = args.out / f"people-{people}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            for step, function, step_args in (
                ("generate", _generate, (people, args.seed, str(folder))),
                ("load", _load, (str(folder),)),
            ):
                console.print(f"{step} {people:,} people ...")
                rows, seconds, cpu, peak_kb = _in_child(function, *step_args)
                results.append((people, step, rows, seconds, cpu, peak_kb / 1024))
                console.print(f"  {sum(rows.values()):,} rows in {seconds:.1f} s (CPU {cpu:.1f} s)")
            size = sum(f.stat().st_size for f in (folder / "sources").iterdir())
            console.print(f"  source files: {size / 2**20:,.0f} MiB")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    console.print(f"load average at the end {os.getloadavg()[0]:.1f}")
    _print(results)


def _print(results: list[tuple[int, str, dict[str, int], float, float, float]]) -> None:
    table = Table(title="generate and load", title_justify="left")
    header = ["people", "step", *SOURCES, "rows", "seconds", "CPU s", "rows/s", "peak MiB"]
    for name in header:
        table.add_column(name, justify="left" if name == "step" else "right")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for people, step, rows, seconds, cpu, peak in results:
        total = sum(rows.values())
        cells = [
            f"{people:,}",
            step,
            *(f"{rows.get(s, 0):,}" for s in SOURCES),
            f"{total:,}",
            f"{seconds:.1f}",
            f"{cpu:.1f}",
            f"{total / seconds:,.0f}",
            f"{peak:,.0f}",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    console.print(table)
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
