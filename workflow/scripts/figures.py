"""Snakemake entry: box plots by size category and configuration, and per model."""

from pathlib import Path

import polars as pl

from serving_energy.figures import plot_models, plot_paper_figures
from serving_energy.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    out_dir = Path(snakemake.output[0])  # noqa: F821
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = pl.read_parquet(snakemake.input[0])  # noqa: F821
    written = plot_paper_figures(runs, out_dir) + plot_models(runs, out_dir)
    log.info("%d figure files written", len(written))
