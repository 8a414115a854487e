"""Snakemake entry: put a checksum-verified HumanEval under resources/."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.dataset import obtain_humaneval

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    count = obtain_humaneval(params.source, params.url, params.sha256, Path(snakemake.output[0]))  # noqa: F821
    log.info("HumanEval from %s: %d problems, SHA-256 verified", params.source, count)
