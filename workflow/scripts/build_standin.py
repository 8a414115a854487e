"""Snakemake entry: a random-weight stand-in model with an offline tokenizer."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.dataset import read_problems
from serving_energy.data.manifest import write_manifest
from serving_energy.data.model_sources import build_standin_model
from serving_energy.study.footprint import check_fits_machine

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    # A job that cannot fit this machine fails now, naming its need, not by the OOM killer.
    check_fits_machine(snakemake.rule, snakemake.resources.mem_mb, snakemake.wildcards.model)  # noqa: F821
    # The stand-in's tokenizer is trained on HumanEval: only on the pinned file.
    read_problems(Path(snakemake.input.humaneval), snakemake.params.humaneval_sha256)  # noqa: F821
    info = build_standin_model(
        dict(snakemake.params.standin),  # noqa: F821
        Path(snakemake.output[0]),  # noqa: F821
        humaneval_path=Path(snakemake.input.humaneval),  # noqa: F821
    )
    log.info("stand-in built: %s", info)
    write_manifest(Path(snakemake.output[0]))  # noqa: F821 (checked before every run)
