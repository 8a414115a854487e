"""Snakemake entry: one table of all runs, and tables of failed attempts, superseded runs and
equivalence checks."""

from pathlib import Path

from serving_energy.analysis.carbon import add_co2e, load_intensity
from serving_energy.analysis.merge import (
    equivalence_table,
    failed_attempts,
    merge_runs,
    superseded_runs,
)
from serving_energy.core.logs import log_to
from serving_energy.serving.validity import ValidityThresholds
from serving_energy.study.layout import ResultsLayout

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    inputs, outputs, params = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    layout = ResultsLayout()
    runs = merge_runs(
        [Path(p) for p in [*inputs.runs, *params.other_runs]],
        params.models,
        ValidityThresholds.from_config(params.validity),
    )
    runs = add_co2e(runs, load_intensity(params.carbon))
    runs.write_parquet(outputs.parquet)
    runs.write_csv(outputs.csv)
    failed = failed_attempts(layout)
    failed.write_csv(outputs.failed)
    superseded_runs(layout).write_csv(outputs.superseded)
    checks = [Path(p) for p in [*inputs.checks, *params.other_checks]]
    equivalence_table(checks).write_csv(outputs.checks)
    log.info(
        "%d runs merged (%d flagged invalid); %d failed attempts listed",
        runs.height,
        runs.height - runs["valid"].sum(),
        failed.height,
    )
