"""Snakemake entry: power, utilisation and phases of one run over time."""

import json
from pathlib import Path

import polars as pl

from serving_energy.figures import plot_run_timeline
from serving_energy.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    run = json.loads(Path(snakemake.input.run).read_text())  # noqa: F821
    title = f"{run['model']} {run['configuration']} rep {run['rep']}"
    written = plot_run_timeline(
        pl.read_parquet(snakemake.input.timeline),
        Path(snakemake.output.png).with_suffix(""),
        title,  # noqa: F821
    )
    log.info("timeline figure: %s", ", ".join(map(str, written)))
