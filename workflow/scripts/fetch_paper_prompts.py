"""Snakemake entry: the authors' published prompts, checksum-verified."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.dataset import fetch_verified

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    fetch_verified(
        params.location,
        params.sha256,
        Path(snakemake.output[0]),
        what="the paper's prompt file",  # noqa: F821
    )
    log.info("paper prompts from %s, SHA-256 verified", params.location)
