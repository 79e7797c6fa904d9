"""Benchmark: identity resolution from raw tables to profiles, records per second and peak memory.

For each target size a synthetic universe is generated and loaded once into a
scratch folder (not timed); then a fresh process runs `resolution.resolve`
(training the Splink model, then every step to `profiles`) and reports wall
time, records per second, its peak resident memory, and quality against the
truth. Run from the repository root:

    .venv/bin/python benchmarks/bench_resolution.py --records 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RECORDS_PER_PERSON = 71  # measured on the default universe (5,000 people: 356,137 records)


def prepare(data_dir: Path, people: int) -> None:
    """Generate and load a universe of `people` into `data_dir`, unless already there."""
    import warehouse
    from pipelines.config import Settings
    from warehouse.synthetic import generate

    settings = Settings(data_dir=data_dir, generate={"people": people, "seed": 11})
    paths = settings.paths
    if (data_dir / "raw.duckdb").exists():
        return
    generate(settings=settings.generate, sources_dir=paths.sources, truth_dir=paths.truth)
    con = warehouse.connect(data_dir / "raw.duckdb")
    try:
        warehouse.load_directory(con, directory=paths.sources)
    finally:
        con.close()


def measure(data_dir: Path) -> dict[str, float]:
    """Resolve a fresh copy of the loaded warehouse; runs in its own process."""
    import shutil

    import warehouse
    from resolution import ResolutionSettings, evaluate, resolve

    work = data_dir / "warehouse.duckdb"
    shutil.copy(data_dir / "raw.duckdb", work)
    shutil.rmtree(data_dir / "resolution", ignore_errors=True)
    con = warehouse.connect(work)
    start = time.perf_counter()
    result = resolve(con, settings=ResolutionSettings(), model_dir=data_dir / "resolution")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    truth = data_dir / "truth" / "record_truth.parquet"
    person, everything = evaluate(con, truth_path=truth)
    con.close()
    records = result.figures["records"]
    return {
        "records": records,
        "profiles": result.figures["profiles"],
        "seconds": round(seconds, 1),
        "records_per_second": round(records / seconds),
        "peak_rss_gib": round(peak, 2),
        "person_precision": round(person.pairwise_precision, 4),
        "person_recall": round(person.pairwise_recall, 4),
        "person_evidence_ceiling": round(person.evidence_ceiling, 4),
        "person_evidenced_f1": round(person.evidenced_f1, 4),
        "all_precision": round(everything.pairwise_precision, 4),
        "all_f1": round(everything.pairwise_f1, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cip-bench-resolution"))
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    for target in args.records:
        people = max(50, round(target / RECORDS_PER_PERSON))
        data_dir = args.work / f"people-{people}"
        prepare(data_dir, people)
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(data_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        print(json.dumps({"target_records": target, "people": people} | figures))


if __name__ == "__main__":
    main()
