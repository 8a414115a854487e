"""Snakemake entry: the runs the analysis leaves out, each with its reasons."""

import polars as pl

from serving_energy.analysis.selection import prepare_analysis
from serving_energy.core.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    analysis = prepare_analysis(pl.read_parquet(snakemake.input[0]), **params.selection)
    excluded = analysis.selection.excluded
    excluded.write_csv(snakemake.output[0])  # noqa: F821
    log.info(
        "%d run(s) left out (analysis.invalid_runs = %s); %d invalid run(s) kept in",
        excluded.height,
        analysis.selection.invalid_runs,
        analysis.selection.invalid_kept,
    )
