"""The two analysis procedures: ``paper`` (the authors' scripts, choice for choice) and ``extended``.

Every choice that differs between them lives in one ``AnalysisMethod`` record, so stats, tables
and figures ask the record instead of branching on a name. docs/analysis.md explains each choice;
the paper's column is read from the authors' code (GAISSA-UPC/energy-ml-serving, MIT):
``experiments/06_tests.py`` (tests), ``04_aggregation.ipynb`` and
``09_result_tables_nov_separated.ipynb`` (Tables 4 and 5), ``08_analysis_nov.ipynb`` (savings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import polars as pl

MethodName = Literal["paper", "extended"]
# How the omnibus test and its post-hoc test are chosen for one dependent variable:
# "parametric" Welch's ANOVA + Games-Howell, "rank" Kruskal-Wallis + a rank post-hoc,
# "by_normality" the first when every compared configuration passes Shapiro-Wilk, else the second.
TestFamily = Literal["parametric", "rank", "by_normality"]
Grouping = Literal["all", "by_provider"]
RankPosthoc = Literal["dunn_holm", "mannwhitney_holm"]
SavingProcedure = Literal["best_vs_worst", "against_torch"]
# The last section of Tables 4 and 5: "models", the mean over every model (row "all");
# "categories", the mean of the size categories' means (row "1,2,3", as the paper prints it).
OverallRow = Literal["models", "categories"]


@dataclass(frozen=True)
class AnalysisMethod:
    """One coherent analysis procedure."""

    name: MethodName
    # "all": every analysed configuration of a model in one comparison (GPU metrics: the CUDA
    # ones); "by_provider": CPU configurations among themselves, CUDA ones among themselves.
    grouping: Grouping
    # Dependent variable (runs-table column) -> how it is tested; columns not listed are not tested.
    tests: Mapping[str, TestFamily]
    rank_posthoc: RankPosthoc
    # True: a pair is significant only when the omnibus test rejected too (gatekeeping);
    # False: the post-hoc p-value alone decides, as the authors' scripts did.
    gate_posthoc: bool
    # The energy shown as "global" for CPU-provider runs in tables, figures and savings:
    # the paper's Table 4 shows CPU energy only; ours the per-run CPU + GPU sum.
    cpu_runs_global_energy: str
    # Decimals each model's median is rounded to before averaging over models (and the means
    # after), as the authors' printed tables did; None keeps every digit.
    round_medians_to: int | None
    # The section after the categories in Tables 4 and 5 (see OverallRow).
    overall_row: OverallRow
    savings: SavingProcedure

    def presented_runs(self, runs: pl.DataFrame) -> pl.DataFrame:
        """The runs as tables, figures and savings show them: ``energy_global_j`` of CPU-provider
        runs replaced by ``cpu_runs_global_energy`` (the statistical tests use the runs as they
        are, as the authors' tests did)."""
        if runs.is_empty():
            return runs
        if self.cpu_runs_global_energy == "energy_global_j":
            if "energy_per_token_j" in runs.columns or "new_tokens" not in runs.columns:
                return runs
            return runs.with_columns(
                (pl.col("energy_global_j") / pl.col("new_tokens")).alias("energy_per_token_j")
            )
        presented = runs.with_columns(
            pl.when(pl.col("provider") == "cpu")
            .then(pl.col(self.cpu_runs_global_energy))
            .otherwise(pl.col("energy_global_j"))
            .alias("energy_global_j")
        )
        if "new_tokens" not in presented.columns:
            return presented
        # Energy per token follows the energy the tables show.
        return presented.with_columns(
            (pl.col("energy_global_j") / pl.col("new_tokens")).alias("energy_per_token_j")
        )

    @property
    def global_energy_note(self) -> str | None:
        """What "global energy" means where it is not simply the per-run CPU + GPU sum."""
        if self.cpu_runs_global_energy == "energy_global_j":
            return None
        return (
            "global energy of CPU-provider runs = CPU energy only, as the paper's Table 4 "
            "(GPU energy of CPU runs left out); CUDA runs: per-run CPU + GPU"
        )


# The paper's Table 3: the test is fixed per dependent variable.
PAPER_TESTS: dict[str, TestFamily] = {
    "energy_global_j": "parametric",
    "duration_s": "parametric",
    "cpu_usage_pct": "parametric",
    "ram_usage_pct": "parametric",
    "gpu_usage_pct": "rank",
    "gpu_mem_util_pct": "rank",
    "gpu_mem_used_pct": "rank",
}

EXTENDED_TESTS: dict[str, TestFamily] = {
    column: "by_normality"
    for column in (
        "energy_global_j",
        "energy_cpu_j",
        "energy_gpu_j",
        "duration_s",
        "cpu_usage_pct",
        "ram_usage_pct",
        "gpu_usage_pct",
        "gpu_mem_util_pct",
        "gpu_mem_used_pct",
    )
}

PAPER = AnalysisMethod(
    name="paper",
    grouping="all",
    tests=PAPER_TESTS,
    rank_posthoc="dunn_holm",
    gate_posthoc=False,
    cpu_runs_global_energy="energy_cpu_j",
    round_medians_to=2,
    overall_row="categories",
    savings="best_vs_worst",
)

EXTENDED = AnalysisMethod(
    name="extended",
    grouping="by_provider",
    tests=EXTENDED_TESTS,
    rank_posthoc="mannwhitney_holm",
    gate_posthoc=True,
    cpu_runs_global_energy="energy_global_j",
    round_medians_to=None,
    overall_row="models",
    savings="against_torch",
)

METHODS: dict[str, AnalysisMethod] = {m.name: m for m in (PAPER, EXTENDED)}


def method_named(name: str) -> AnalysisMethod:
    """The method called ``name`` (the value of ``analysis.method``)."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"analysis.method: unknown method {name!r}; use one of {', '.join(METHODS)}"
        ) from None
