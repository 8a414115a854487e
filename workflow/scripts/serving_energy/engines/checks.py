"""The equivalence check of one serving configuration, as the workflow runs it after export."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serving_energy.core.io import write_atomic_json
from serving_energy.engines.equivalence import EquivalenceResult, check_equivalence
from serving_energy.engines.registry import load_engine
from serving_energy.study.vocabulary import REFERENCE_ENGINE


def _logits_at_other_threads(reference, threads: int):
    """The reference's logits with another torch thread count: another accumulation order, so
    their difference from the reference's is torch's own fp32 noise on this model."""
    import torch

    other = 1 if threads > 1 else 2

    def logits(token_ids):
        previous = torch.get_num_threads()
        torch.set_num_threads(other)
        try:
            return reference.sequence_logits(token_ids)
        finally:
            torch.set_num_threads(previous)

    return logits, other


def check_configuration(
    *,
    model: str,
    engine: str,
    provider: str,
    model_dir: Path,
    artefact_dir: Path | None,
    prompts: list[str],
    max_new_tokens: int,
    max_mismatched_tokens: int,
    threads: int,
    out_path: Path,
    options: Mapping[str, Any] | None = None,
) -> EquivalenceResult:
    """Compare ``engine`` with torch on the same provider; write check.json whatever the verdict.

    check.json names the model, engine and provider it belongs to (nothing reads them from its
    path), then the verdict and its detail (``EquivalenceResult``).

    ``options`` (the engine's own, config ``engines.<engine>``) must be those of the measured
    runs (e.g. OpenVINO's inference precision), so the
    check judges the arithmetic that is measured; torch, the reference, always runs at fp32.

    A disagreement does not fail the job: the configuration is flagged in check.json, in every
    run's metadata and in the report, and its runs are kept apart by the analysis.
    """
    reference = load_engine(REFERENCE_ENGINE, provider, model_dir, None, threads)
    candidate = load_engine(engine, provider, model_dir, artefact_dir, threads, options)
    # As the measured runs' server does (torch.compile compiles its decode step now).
    candidate.prepare_for(1 + max_new_tokens)
    noise_logits, other_threads = _logits_at_other_threads(reference, threads)
    result = check_equivalence(
        candidate,
        reference,
        prompts,
        max_new_tokens,
        max_mismatched_tokens=max_mismatched_tokens,
        noise_logits=noise_logits,
        noise_threads=(threads, other_threads),
    )
    write_atomic_json(Path(out_path), {"model": model, **result.to_dict()})
    return result
