"""Snakemake entry: compare an engine's greedy tokens with torch's on the same provider."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.dataset import verified_prompts
from serving_energy.data.manifest import verify_manifest
from serving_energy.engines.checks import check_configuration
from serving_energy.study.design import settings_from_engine_options
from serving_energy.study.footprint import check_fits_machine

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    # A job that cannot fit this machine fails now, naming its need, not by the OOM killer.
    check_fits_machine(snakemake.rule, snakemake.resources.mem_mb, snakemake.wildcards.model)  # noqa: F821
    params = snakemake.params  # noqa: F821
    wildcards = snakemake.wildcards  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    verified = verified_prompts(inputs.prompts, inputs.prompts_manifest, params.expected_prompts)
    prompts = [p.prompt for p in verified][: params.n_prompts]
    # An engine that loads the model folder itself (torch.compile) has no export.
    artefact = Path(inputs.artefact) if "artefact" in inputs.keys() else None
    for folder in (Path(inputs.model), artefact):
        if folder is not None:
            log.info("%s: %s", folder, verify_manifest(folder))
    result = check_configuration(
        model=wildcards.model,
        engine=wildcards.engine,
        provider=wildcards.provider,
        model_dir=Path(snakemake.input.model),  # noqa: F821
        artefact_dir=artefact,
        prompts=prompts,
        max_new_tokens=params.max_new_tokens,
        max_mismatched_tokens=params.max_mismatched_tokens,
        threads=snakemake.threads,  # noqa: F821
        out_path=Path(snakemake.output[0]),  # noqa: F821
        # The measured runs' options, so the check judges the arithmetic that is measured.
        options=settings_from_engine_options(wildcards.engine, params.engine_options),
    )
    log.info("equivalence %s: %s", "passed" if result.passed else "FAILED", result)
