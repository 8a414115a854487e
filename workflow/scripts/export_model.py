"""Snakemake entry: export a model for one engine, with the exporter its plug-in's spec names."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.manifest import write_manifest
from serving_energy.engines.export import export_model
from serving_energy.study.footprint import check_fits_machine, export_stage
from serving_energy.study.layout import parse_export_artefact

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    wildcards = snakemake.wildcards  # noqa: F821
    engine, provider = parse_export_artefact(wildcards.artefact)
    # A job that cannot fit this machine fails now, naming its need, not by the OOM killer.
    check_fits_machine(export_stage(engine), snakemake.resources.mem_mb, wildcards.model)  # noqa: F821
    info = export_model(
        engine,
        Path(snakemake.input.model),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        provider,
        snakemake.params.settings,  # noqa: F821
    )
    log.info("%s export: %s", engine, info)
    write_manifest(Path(snakemake.output[0]))  # noqa: F821 (checked before every run)
