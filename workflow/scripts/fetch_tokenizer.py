"""Snakemake entry: a tokenizer for counting prompt tokens, from the Hub or an offline package."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.tokenizer_sources import save_tokenizer

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    description = save_tokenizer(dict(snakemake.params.entry), Path(snakemake.output[0]))  # noqa: F821
    log.info("tokenizer saved: %s", description)
