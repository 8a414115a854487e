"""How long Snakemake takes to plan the paper's study, and a study ten times larger.

Each case is a dry run (`snakemake -n --quiet`) of the real Snakefile in a scratch folder, timed
from process start to exit (so Python start-up and parsing count), repeated and summarised by the
median. Goal on a 2-core machine: under 5 s for the paper's study, under 60 s ten times larger.

    .venv/bin/python benchmarks/bench_dag.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def scaled_config(factor: int) -> dict:
    """The paper's study with every model repeated ``factor`` times under new aliases."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["cuda"] = {"policy": "require"}  # plan all 7 configurations, as on a GPU machine
    if factor > 1:
        config["models"] = {
            f"{alias}-copy{index}": copy.deepcopy(model)
            for index in range(factor)
            for alias, model in config["models"].items()
        }
    return config


def dry_run(config_path: Path, workdir: Path, quiet: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n", "--quiet", quiet, "--cores", "1",
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(config_path),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return elapsed, result.stdout


def plan(config_path: Path, workdir: Path) -> float:
    """Seconds for a silent dry run: start-up, parsing, validation and the whole DAG."""
    return dry_run(config_path, workdir, "all")[0]


def job_count(config_path: Path, workdir: Path) -> int:
    output = dry_run(config_path, workdir, "rules")[1]
    return next(int(line.split()[1]) for line in output.splitlines() if line.startswith("total"))


def startup_s(workdir: Path) -> float:
    """Seconds for `snakemake --version`: interpreter and Snakemake imports, no workflow."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--version"], capture_output=True, cwd=workdir
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, factor in (("paper (12 models)", 1), ("10x (120 models)", 10)):
            config_path = Path(scratch) / f"study-{factor}.yaml"
            config_path.write_text(yaml.safe_dump(scaled_config(factor)))
            jobs = job_count(config_path, Path(scratch))
            times = [plan(config_path, Path(scratch)) for _ in range(args.repeats)]
            rows.append((name, jobs, statistics.median(times), min(times)))
        startup = statistics.median(startup_s(Path(scratch)) for _ in range(args.repeats))
    print(f"{'study':<20} {'jobs':>7} {'median s':>9} {'min s':>7}")
    for name, jobs, median, best in rows:
        print(f"{name:<20} {jobs:>7} {median:>9.2f} {best:>7.2f}")
    print(f"snakemake start-up alone (--version): {startup:.2f} s")
    print(f"ratio 10x / paper: {rows[1][2] / rows[0][2]:.2f}")


if __name__ == "__main__":
    main()
