"""Snakemake entry: box plots by size category and configuration, and per model."""

from pathlib import Path

import polars as pl

from serving_energy.analysis.figures import plot_study_figures
from serving_energy.analysis.selection import prepare_analysis
from serving_energy.core.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    out_dir = Path(snakemake.output[0])  # noqa: F821
    out_dir.mkdir(parents=True, exist_ok=True)
    analysis = prepare_analysis(pl.read_parquet(snakemake.input[0]), **params.selection)
    runs = analysis.method.presented_runs(analysis.runs)
    written = plot_study_figures(runs, out_dir, labels=analysis.labels)
    log.info("method %s: %d figure files written", analysis.method.name, len(written))
