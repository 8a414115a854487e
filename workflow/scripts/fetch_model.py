"""Snakemake entry: a Hugging Face snapshot at its pinned revision."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.manifest import write_manifest
from serving_energy.data.model_sources import fetch_model

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    snapshot = fetch_model(
        params.hf_id,
        params.revision,
        Path(snakemake.output[0]),
        params.trust_remote_code,  # noqa: F821
    )
    log.info("fetched %s at %s (commit %s)", params.hf_id, params.revision, snapshot.commit)
    write_manifest(Path(snakemake.output[0]))  # noqa: F821 (checked before every run)
