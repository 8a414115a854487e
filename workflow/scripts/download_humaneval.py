"""Snakemake entry: put a checksum-verified HumanEval under resources/."""

from pathlib import Path

from serving_energy.dataset import obtain_humaneval
from serving_energy.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    count = obtain_humaneval(params.source, params.url, params.sha256, Path(snakemake.output[0]))  # noqa: F821
    log.info("HumanEval from %s: %d problems, SHA-256 verified", params.source, count)
