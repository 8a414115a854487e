"""What every table, statistics file and figure must say about the data it was made from.

A figure copied into a paper must not lose the fact that its joules are an estimate from stand-in
models, nor which analysis method made it. ``DataLabels`` is computed once from the analysed runs
and travels into every output: two columns in CSVs (``analysis_method``, ``note``), the caption of
LaTeX tables, a footer line on figures (and the PNG's ``Description`` metadata).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from serving_energy.analysis.method import AnalysisMethod

ESTIMATE = "estimate"
# The runs-table columns that say how each energy figure was obtained (the meters' method).
ENERGY_METHOD_COLUMNS: tuple[str, ...] = (
    "energy_cpu_method",
    "energy_gpu_method",
    "energy_global_method",
)
LABEL_COLUMNS: tuple[str, ...] = ("analysis_method", "note")


@dataclass(frozen=True)
class DataLabels:
    method: str
    estimated: tuple[str, ...] = ()  # energy method columns with an estimate in some run
    estimated_runs: int = 0
    n_runs: int = 0
    standin_models: tuple[str, ...] = ()
    invalid_kept: int = 0
    excluded_runs: int = 0
    global_energy: str | None = None  # what "global energy" means, where it is not CPU + GPU
    carbon_estimated: bool = False  # co2e_g present and made from an estimated energy somewhere

    @classmethod
    def of(
        cls,
        runs: pl.DataFrame,
        method: AnalysisMethod,
        *,
        invalid_kept: int = 0,
        excluded_runs: int = 0,
    ) -> DataLabels:
        """The labels of ``runs`` (the analysed runs) under ``method``."""
        # A method names an estimate ("estimate", or a composite like "cpu estimate only: ...").
        flags = {
            c: runs[c].cast(pl.String).str.contains(ESTIMATE).fill_null(False)
            for c in ENERGY_METHOD_COLUMNS
            if c in runs.columns
        }
        estimated = tuple(c for c, flag in flags.items() if flag.any())
        estimated_runs = (
            pl.DataFrame([flags[c] for c in estimated])
            .select(pl.any_horizontal(pl.all()))
            .sum()
            .item()
            if estimated
            else 0
        )
        standins: Sequence[str] = ()
        if "standin" in runs.columns:
            standins = sorted(runs.filter(pl.col("standin").fill_null(False))["model"].unique())
        return cls(
            method=method.name,
            estimated=estimated,
            estimated_runs=int(estimated_runs),
            n_runs=runs.height,
            standin_models=tuple(standins),
            invalid_kept=invalid_kept,
            excluded_runs=excluded_runs,
            global_energy=method.global_energy_note if _gpu_seen_in_cpu_runs(runs) else None,
            carbon_estimated=bool(
                "co2e_basis" in runs.columns and (runs["co2e_basis"] == ESTIMATE).any()
            ),
        )

    def lines(self) -> list[str]:
        """Human sentences, most important first; empty when there is nothing to warn about."""
        lines: list[str] = []
        if self.estimated:
            which = ", ".join(c.removesuffix("_method") for c in self.estimated)
            lines.append(
                f"ENERGY IS AN ESTIMATE, not a measurement ({which}: method 'estimate' in "
                f"{self.estimated_runs} of {self.n_runs} runs; no sensor was available)"
            )
        if self.carbon_estimated:
            lines.append("CO2e IS AN ESTIMATE: made from estimated energy (runs.csv: co2e_basis)")
        if self.standin_models:
            lines.append(
                f"STAND-IN MODELS ({', '.join(self.standin_models)}): small random-weight "
                "models, not the study's models"
            )
        if self.invalid_kept:
            lines.append(
                f"{self.invalid_kept} invalid run(s) kept in (analysis.invalid_runs = keep); "
                "see runs.csv for their reasons"
            )
        if self.excluded_runs:
            lines.append(f"{self.excluded_runs} run(s) left out: see excluded_runs.csv")
        if self.global_energy:
            lines.append(self.global_energy)
        return lines

    @property
    def note(self) -> str:
        """All lines in one string ("" when there is nothing to say)."""
        return "; ".join(self.lines())

    @property
    def headline(self) -> str:
        """One line naming the method and, briefly, the data's caveats (for figure footers)."""
        caveats = []
        if self.estimated:
            caveats.append("energy: ESTIMATE, not measured")
        if self.standin_models:
            caveats.append("STAND-IN models")
        if self.invalid_kept:
            caveats.append(f"{self.invalid_kept} invalid run(s) kept (crosses)")
        return " | ".join([f"analysis method: {self.method}", *caveats])

    def caption(self, text: str) -> str:
        """A LaTeX/report caption: ``text``, the method, and the note."""
        parts = [text.rstrip(".") + ".", f"Analysis method: {self.method}."]
        if self.note:
            parts.append(f"Note: {self.note}.")
        return " ".join(parts)

    def with_columns(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the ``analysis_method`` and ``note`` columns (same value in every row)."""
        return frame.with_columns(
            pl.lit(self.method, dtype=pl.String).alias("analysis_method"),
            pl.lit(self.note, dtype=pl.String).alias("note"),
        )


def _gpu_seen_in_cpu_runs(runs: pl.DataFrame) -> bool:
    """Whether a CPU-provider run recorded GPU energy, i.e. whether leaving it out of the
    global energy (the paper's Table 4) changes any number."""
    if not {"provider", "energy_gpu_j"} <= set(runs.columns):
        return False
    gpu = runs.filter(pl.col("provider") == "cpu")["energy_gpu_j"].cast(pl.Float64)
    return bool((gpu.fill_null(0.0) != 0.0).any())
