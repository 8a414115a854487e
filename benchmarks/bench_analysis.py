"""Time the analysis library on a synthetic study: statistics, tables, figures.

The paper's study is 12 models x 7 configurations x 10 repetitions (840 runs); the second size
is ten times as many models. Goal: under 60 s for the paper's size on one workstation core.

    .venv/bin/python benchmarks/bench_analysis.py                 # both sizes, both methods
    .venv/bin/python benchmarks/bench_analysis.py --models 12     # the paper's size only
    .venv/bin/python benchmarks/bench_analysis.py --method paper  # one analysis method

The synthetic runs come from ``tests/analysis/synthetic.py`` (the same generator the tests use).
Merging runs is not timed here: it belongs to ``merge_runs`` and reads run folders from disk.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "analysis"))

from synthetic import synthetic_runs  # noqa: E402

from serving_energy.analysis import figures, stats, tables  # noqa: E402 (after sys.path)
from serving_energy.analysis.method import METHODS, AnalysisMethod  # noqa: E402
from serving_energy.analysis.metrics import METRICS  # noqa: E402
from serving_energy.analysis.selection import prepare_analysis  # noqa: E402


def timed(label: str, work: Callable[[], object], timings: dict[str, float]) -> object:
    # CPU time next to wall time: on a shared machine the wall time mostly measures the others.
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    timings[label] = time.perf_counter() - wall
    print(
        f"  {label:<22} {timings[label]:8.2f} s wall {time.process_time() - cpu:8.2f} s CPU",
        flush=True,
    )
    return result


def run_study(
    n_models: int, n_reps: int, out_dir: Path, model_figures: int | None, method: AnalysisMethod
) -> float:
    all_runs = synthetic_runs(n_models=n_models, n_reps=n_reps, seed=0)
    print(
        f"{n_models} models x 7 configurations x {n_reps} repetitions = {all_runs.height} runs, "
        f"method {method.name}"
    )
    print(f"  (load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    timings: dict[str, float] = {}
    analysis = timed(
        "selection and labels",
        lambda: prepare_analysis(all_runs, method=method.name, invalid_runs="exclude"),
        timings,
    )
    runs, labels = analysis.runs, analysis.labels
    shown = method.presented_runs(runs)

    def statistics() -> None:
        result = stats.analyse_runs(runs, method=method)
        (out_dir / "stats").mkdir(parents=True, exist_ok=True)
        labels.with_columns(result.tests).write_csv(out_dir / "stats" / "tests.csv")
        labels.with_columns(result.posthoc).write_csv(out_dir / "stats" / "posthoc.csv")
        stats.write_tests_latex(result.tests, out_dir / "stats" / "tests.tex")
        stats.write_posthoc_latex(result.posthoc, out_dir / "stats" / "posthoc.tex")

    def paper_tables() -> None:
        t = out_dir / "tables"
        tables.write_size_category_table(
            tables.table4(runs, method),
            t / "table4.csv",
            t / "table4.tex",
            caption="T4",
            label="t4",
            labels=labels,
        )
        tables.write_size_category_table(
            tables.table5(runs, method),
            t / "table5.csv",
            t / "table5.tex",
            caption="T5",
            label="t5",
            labels=labels,
        )
        ranges = tables.all_saving_ranges(runs, method=method)
        labels.with_columns(ranges).write_csv(t / "savings.csv")
        tables.write_saving_sentences(ranges, t / "savings.md", method, labels)

    def by_size_figures() -> None:
        for metric in METRICS:
            stem = out_dir / "figures" / f"boxplot_{metric.column}"
            figures.plot_metric_by_size_and_configuration(shown, metric, stem, labels=labels)

    def per_model_figures() -> None:
        for model in sorted(shown["model"].unique().to_list())[:model_figures]:
            figures.plot_model(shown, model, out_dir / "figures" / f"model_{model}", labels=labels)

    timed("statistics", statistics, timings)
    timed("tables", paper_tables, timings)
    timed("figures (by size)", by_size_figures, timings)
    label = "figures (per model)" if model_figures is None else f"figures ({model_figures} models)"
    timed(label, per_model_figures, timings)
    total = sum(timings.values())
    print(f"  {'total':<22} {total:8.2f} s wall\n", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[12, 120])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument(
        "--model-figures",
        type=int,
        default=None,
        help="draw per-model figures for only this many models (default: all)",
    )
    parser.add_argument("--method", choices=sorted(METHODS), nargs="+", default=sorted(METHODS))
    args = parser.parse_args()
    for n_models in args.models:
        for name in args.method:
            with tempfile.TemporaryDirectory() as tmp:
                run_study(n_models, args.reps, Path(tmp), args.model_figures, METHODS[name])


if __name__ == "__main__":
    main()
