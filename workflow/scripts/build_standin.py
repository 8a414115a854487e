"""Snakemake entry: a random-weight stand-in model with an offline tokenizer."""

from pathlib import Path

from serving_energy.logs import log_to
from serving_energy.model_sources import build_standin_model

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    info = build_standin_model(
        dict(snakemake.params.standin),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        humaneval_path=Path(snakemake.input.humaneval),  # noqa: F821
    )
    log.info("stand-in built: %s", info)
