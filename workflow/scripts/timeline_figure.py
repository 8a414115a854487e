"""Snakemake entry: power, utilisation and phases of one run over time."""

import json
from pathlib import Path

from serving_energy.analysis.figures import plot_run_timeline
from serving_energy.core.logs import log_to
from serving_energy.meters.timeline import Timeline

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    run = json.loads(Path(snakemake.input.run).read_text())  # noqa: F821
    title = f"{run['model']} {run['configuration']} rep {run['rep']}"
    note = (
        "STAND-IN model: small random weights, not the study's model"
        if run.get("standin")
        else None
    )
    written = plot_run_timeline(
        Timeline.from_parquet(snakemake.input.timeline),  # noqa: F821
        Path(snakemake.output.png).with_suffix(""),  # noqa: F821
        title,
        note=note,
    )
    log.info("timeline figure: %s", ", ".join(map(str, written)))
