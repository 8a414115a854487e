"""Snakemake entry: trace a model to TorchScript (prefill + decode step over a KV cache, verified
against the eager model) for one provider."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.manifest import write_manifest
from serving_energy.engines.export import export_torchscript
from serving_energy.study.footprint import check_fits_machine

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    # A job that cannot fit this machine fails now, naming its need, not by the OOM killer.
    check_fits_machine(snakemake.rule, snakemake.resources.mem_mb, snakemake.wildcards.model)  # noqa: F821
    info = export_torchscript(
        Path(snakemake.input.model),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        provider=snakemake.wildcards.provider,  # noqa: F821
    )
    log.info("TorchScript export: %s", info)
    write_manifest(Path(snakemake.output[0]))  # noqa: F821 (checked before every run)
