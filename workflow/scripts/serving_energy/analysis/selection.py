"""Which measured runs enter the analysis, and the list of those left out with the reason.

Two filters, both about the analysis only (nothing is re-measured or deleted):

- ``analysis.configurations``: configurations to include or exclude (the paper left TorchScript
  out of its tests and tables);
- ``analysis.invalid_runs``: what happens to runs whose validity gates failed (``valid`` false in
  the runs table): ``exclude`` leaves them out of tests, tables and figures; ``keep`` keeps them in,
  and every output says how many invalid runs it contains.

A runs table without a ``valid`` column (runs merged before the gates existed) counts as all
valid; so does a null ``valid`` in a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.method import AnalysisMethod, method_named
from serving_energy.study.vocabulary import CONFIGURATION_IDS, Configuration

InvalidRunsPolicy = Literal["exclude", "keep"]
INVALID_RUNS_POLICIES: tuple[str, ...] = ("exclude", "keep")

NOT_ANALYSED_REASON = "configuration not analysed (analysis.configurations)"

EXCLUDED_RUNS_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "configuration": pl.String(),
    "rep": pl.Int64(),
    "reasons": pl.String(),
}


@dataclass(frozen=True)
class Selection:
    """``runs``: what the analysis uses; ``excluded``: one row per run left out, with its reasons;
    ``invalid_kept``: invalid runs that stayed in (policy ``keep``)."""

    runs: pl.DataFrame
    excluded: pl.DataFrame
    invalid_kept: int
    invalid_runs: InvalidRunsPolicy


def _check_ids(ids: Sequence[str], key: str) -> None:
    unknown = [i for i in ids if i not in CONFIGURATION_IDS]
    if unknown:
        raise ValueError(
            f"{key}: unknown configuration(s) {', '.join(map(repr, unknown))}; "
            f"use engine-provider ids: {', '.join(CONFIGURATION_IDS)}"
        )


def _constant(value: bool, n: int) -> pl.Series:
    return pl.Series([value] * n, dtype=pl.Boolean)


def analysed_configuration(
    runs: pl.DataFrame, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> pl.Series:
    """True for runs whose configuration is analysed: in ``include`` (empty: all) and not in
    ``exclude``. Unknown ids are an error naming the key."""
    _check_ids(include, "analysis.configurations.include")
    _check_ids(exclude, "analysis.configurations.exclude")
    # each run's id, e.g. ``onnx-cpu``: the ids the config uses
    ids = pl.Series(
        [Configuration(*pair).id for pair in runs.select("engine", "provider").iter_rows()],
        dtype=pl.String,
    )
    chosen = ids.is_in(list(include)) if include else _constant(True, runs.height)
    return chosen & ~ids.is_in(list(exclude))


def valid_mask(runs: pl.DataFrame) -> pl.Series:
    """True for valid runs; a missing column or a null means valid (runs from before the gates)."""
    if "valid" not in runs.columns:
        return _constant(True, runs.height)
    return runs["valid"].cast(pl.Boolean).fill_null(True)


def _reasons(runs: pl.DataFrame) -> pl.Series:
    if "invalid_reasons" not in runs.columns:
        return pl.Series(["invalid (no reason recorded)"] * runs.height, dtype=pl.String)
    return runs["invalid_reasons"].cast(pl.String).fill_null("invalid (no reason recorded)")


def select_runs(
    runs: pl.DataFrame,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    invalid_runs: InvalidRunsPolicy = "exclude",
) -> Selection:
    """Apply ``analysis.configurations`` and ``analysis.invalid_runs`` to the runs table.

    A run left out for both reasons is listed once with both reasons.
    """
    if invalid_runs not in INVALID_RUNS_POLICIES:
        raise ValueError(
            f"analysis.invalid_runs: unknown policy {invalid_runs!r}; "
            f"use one of {', '.join(INVALID_RUNS_POLICIES)}"
        )
    analysed_config = analysed_configuration(runs, include, exclude)
    valid = valid_mask(runs)
    left_out_invalid = ~valid if invalid_runs == "exclude" else _constant(False, runs.height)
    keep = analysed_config & ~left_out_invalid
    reasons = [
        "; ".join(
            part
            for part, applies in ((NOT_ANALYSED_REASON, not config_ok), (reason, invalid_out))
            if applies
        )
        for config_ok, invalid_out, reason in zip(
            analysed_config, left_out_invalid, _reasons(runs), strict=True
        )
    ]
    excluded = (
        runs.select("model", "configuration", pl.col("rep").cast(pl.Int64))
        .with_columns(pl.Series("reasons", reasons, dtype=pl.String))
        .filter(~keep)
        .sort("model", "configuration", "rep")
    )
    kept = runs.filter(keep)
    invalid_kept = int((~valid_mask(kept)).sum()) if kept.height else 0
    return Selection(
        runs=kept,
        excluded=excluded.select(list(EXCLUDED_RUNS_SCHEMA)).cast(EXCLUDED_RUNS_SCHEMA),
        invalid_kept=invalid_kept,
        invalid_runs=invalid_runs,
    )


@dataclass(frozen=True)
class AnalysisInput:
    """What every analysis job starts from: the method, the analysed runs and their labels."""

    method: AnalysisMethod
    selection: Selection
    labels: DataLabels

    @property
    def runs(self) -> pl.DataFrame:
        return self.selection.runs


def prepare_analysis(
    runs: pl.DataFrame,
    *,
    method: str,
    configurations: Mapping[str, Sequence[str]] | None = None,
    invalid_runs: InvalidRunsPolicy = "exclude",
) -> AnalysisInput:
    """Apply the ``analysis`` settings (plain values: ``method``, ``configurations`` with
    ``include``/``exclude`` lists, ``invalid_runs``) to the merged runs table."""
    chosen = method_named(method)
    configurations = configurations or {}
    unknown = set(configurations) - {"include", "exclude"}
    if unknown:
        raise ValueError(
            f"analysis.configurations: unknown key(s) {', '.join(sorted(unknown))}; "
            "use include and exclude"
        )
    selection = select_runs(
        runs,
        include=configurations.get("include", ()),
        exclude=configurations.get("exclude", ()),
        invalid_runs=invalid_runs,
    )
    labels = DataLabels.of(
        selection.runs,
        chosen,
        invalid_kept=selection.invalid_kept,
        excluded_runs=selection.excluded.height,
    )
    return AnalysisInput(chosen, selection, labels)
