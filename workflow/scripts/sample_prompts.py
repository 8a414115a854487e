"""Snakemake entry: one prompt per HumanEval problem (sampled by the paper's method, or theirs)."""

from pathlib import Path

from serving_energy.core.logs import log_to
from serving_energy.data.prompts import make_prompts

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params = snakemake.params  # noqa: F821
    inputs = snakemake.input  # noqa: F821
    prompts = make_prompts(
        source=params.source,
        humaneval_path=Path(inputs.humaneval),
        tokenizer_dir=Path(inputs.tokenizer),
        paper_prompts_path=Path(inputs.paper_prompts) if "paper_prompts" in inputs.keys() else None,
        seed=params.seed,
        min_tokens=params.min_tokens,
        max_tokens=params.max_tokens,
        limit=params.limit,
        out_path=Path(snakemake.output.prompts),  # noqa: F821
        manifest_path=Path(snakemake.output.manifest),  # noqa: F821
        humaneval_sha256=params.humaneval_sha256,
    )
    log.info("%d prompts written (source: %s, seed: %s)", len(prompts), params.source, params.seed)
