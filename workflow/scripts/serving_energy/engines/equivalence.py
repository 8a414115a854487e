"""Equivalence check: does an engine generate what the reference (torch) generates?

Greedy token ids are compared position by position. Three verdicts (``engines/tolerance.py``):
``identical`` ids, a divergence on a ``near_tie`` of torch's top two logits explained by a
difference small against the logits' scale (recorded with its margin and difference; not a
failure), and ``failed``. ``max_mismatched_tokens`` lets a study tolerate some mismatched tokens
beside that (default zero). Logit differences are measured on the
reference's own greedy sequence (prompt + generated ids), with one uncached forward pass per
engine, so both engines see identical inputs even after their tokens diverge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from serving_energy.engines.base import Engine
from serving_energy.engines.tolerance import (
    FAILED,
    IDENTICAL,
    Divergence,
    judge,
    logit_scale,
)


@dataclass(frozen=True)
class PromptComparison:
    prompt_index: int
    prompt_tokens: int
    agreed_tokens: int
    n_tokens: int
    first_divergence_token: int | None
    max_logit_diff: float | None
    reference_margin_at_divergence: float | None = None
    logit_scale: float | None = None  # the largest |reference logit| compared
    # torch's own fp32 noise on this prompt: its logits computed two ways (another thread count;
    # incrementally with its KV cache, as it generates, against the full forward pass)
    reference_noise_logit_diff: float | None = None


@dataclass(frozen=True)
class EquivalenceResult:
    engine: str
    provider: str
    reference_engine: str
    reference_provider: str
    n_prompts: int
    n_tokens: int
    mismatched_tokens: int
    token_agreement: float  # fraction of compared positions with the same greedy id
    first_divergence: tuple[int, int] | None  # (prompt index, new-token index)
    # The reference's top-1 minus top-2 logit where the first divergence happened: a margin below
    # max_logit_diff means a near-tie flipped by float rounding, not a broken engine.
    reference_margin_at_first_divergence: float | None
    max_logit_diff: float | None
    max_logit_diff_unavailable_reason: str | None
    max_mismatched_tokens: int  # the tolerance
    passed: bool  # identical, a near tie, or mismatches within max_mismatched_tokens
    verdict: str = IDENTICAL  # identical | near_tie | failed (tolerance.VERDICTS)
    verdict_reason: str = ""
    logit_scale: float | None = None  # the largest |reference logit| compared
    # torch against itself at another thread count: the reference's own fp32 noise
    noise_floor_logit_diff: float | None = None
    noise_floor_threads: tuple[int, int] | None = None
    # torch's logits as it generates (KV cache) against its full forward pass over the same ids
    decode_noise_logit_diff: float | None = None
    per_prompt: tuple[PromptComparison, ...] = ()
    # The candidate's arithmetic as it reported it: a check only vouches for runs at the same one.
    compute_precision: str | None = None
    precision_settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _logit_comparison(
    candidate: Engine,
    reference: Engine,
    token_ids: list[int],
    prompt_len: int,
    divergence,
    noise_logits: Callable | None = None,
    reference_steps=None,
) -> tuple[float | None, float | None, float | None, float | None, float | None]:
    """(max |logit difference| over the positions that predict new tokens, the reference's
    top-1 minus top-2 logit at the first divergence, the logits' scale, the reference's
    difference from ``noise_logits`` (itself computed another way), and from
    ``reference_steps``, the logits its generation chose from) -- each None where not
    obtainable."""
    import numpy as np

    ref_logits = reference.sequence_logits(token_ids)
    cand_logits = candidate.sequence_logits(token_ids)
    margin = scale = noise = decode_noise = None
    predicting = slice(prompt_len - 1, len(token_ids) - 1)
    if ref_logits is not None:
        scale = logit_scale(ref_logits[predicting])
        if divergence is not None:
            top_two = np.sort(ref_logits[prompt_len - 1 + divergence])[-2:]
            margin = float(top_two[1] - top_two[0])
        if noise_logits is not None:
            other = noise_logits(token_ids)
            if other is not None:
                noise = float(np.max(np.abs(ref_logits[predicting] - other[predicting])))
        if reference_steps is not None:
            decode_noise = float(np.max(np.abs(ref_logits[predicting] - reference_steps)))
    if ref_logits is None or cand_logits is None:
        return None, margin, scale, noise, decode_noise
    diff = float(np.max(np.abs(ref_logits[predicting] - cand_logits[predicting])))
    return diff, margin, scale, noise, decode_noise


def check_equivalence(
    candidate: Engine,
    reference: Engine,
    prompts: list[str],
    max_new_tokens: int,
    max_mismatched_tokens: int = 0,
    noise_logits: Callable | None = None,
    noise_threads: tuple[int, int] | None = None,
) -> EquivalenceResult:
    """Generate every prompt in both engines and compare greedy ids (and logits where exposed).

    ``noise_logits(token_ids)`` -- the reference's logits computed another way (torch at the
    ``noise_threads`` other thread count) -- measures the reference's own fp32 noise.
    """
    if not prompts:
        raise ValueError("the equivalence check needs at least one prompt")
    comparisons = []
    noise_diffs = []
    decode_noises = []
    # torch gives the logits it generated from; another reference engine gives its ids only
    generate_with_steps = getattr(reference, "generate_with_step_logits", None)
    for index, prompt in enumerate(prompts):
        if generate_with_steps is not None:
            ref, steps = generate_with_steps(prompt, max_new_tokens)
        else:
            ref, steps = reference.generate(prompt, max_new_tokens), None
        cand = candidate.generate(prompt, max_new_tokens)
        if cand.prompt_tokens != ref.prompt_tokens:
            raise ValueError(
                f"prompt {index} tokenises to {cand.prompt_tokens} tokens in {candidate.name} "
                f"but {ref.prompt_tokens} in {reference.name}: the engines use different tokenizers"
            )
        pairs = list(zip(cand.new_token_ids, ref.new_token_ids, strict=True))
        divergence = next((i for i, (c, r) in enumerate(pairs) if c != r), None)
        sequence = reference.encode(prompt) + list(ref.new_token_ids)
        max_diff, margin, scale, noise, decode_noise = _logit_comparison(
            candidate, reference, sequence, ref.prompt_tokens, divergence, noise_logits, steps
        )
        noise_diffs.append(noise)
        decode_noises.append(decode_noise)
        known_noises = [n for n in (noise, decode_noise) if n is not None]
        comparisons.append(
            PromptComparison(
                prompt_index=index,
                prompt_tokens=ref.prompt_tokens,
                agreed_tokens=sum(c == r for c, r in pairs),
                n_tokens=len(pairs),
                first_divergence_token=divergence,
                max_logit_diff=max_diff,
                reference_margin_at_divergence=margin,
                logit_scale=scale,
                reference_noise_logit_diff=max(known_noises) if known_noises else None,
            )
        )
    n_tokens = sum(c.n_tokens for c in comparisons)
    mismatched = n_tokens - sum(c.agreed_tokens for c in comparisons)
    first_diverging = next((c for c in comparisons if c.first_divergence_token is not None), None)
    first = (
        (first_diverging.prompt_index, first_diverging.first_divergence_token)
        if first_diverging
        else None
    )
    diffs = [c.max_logit_diff for c in comparisons]
    logits_known = all(d is not None for d in diffs)
    unavailable_reason = None
    if not logits_known:
        unavailable_reason = next(
            (
                f"{e.name}: {e.logits_unavailable_reason}"
                for e in (candidate, reference)
                if e.logits_unavailable_reason
            ),
            "an engine returned no logits",
        )
    scales = [c.logit_scale for c in comparisons if c.logit_scale is not None]
    scale = max(scales) if scales else 1.0
    max_diff = max(diffs) if logits_known else None
    prompt_noises = [c.reference_noise_logit_diff for c in comparisons]
    verdict, reason = judge(
        [
            Divergence(
                c.reference_margin_at_divergence, c.max_logit_diff, c.reference_noise_logit_diff
            )
            for c in comparisons
            if c.first_divergence_token is not None
        ],
        max_diff,
        scale,
        reference_noise=max((n for n in prompt_noises if n is not None), default=None),
    )
    noise_known = noise_logits is not None and all(n is not None for n in noise_diffs)
    decode_known = all(n is not None for n in decode_noises)
    candidate_info, reference_info = candidate.info(), reference.info()
    return EquivalenceResult(
        engine=candidate_info.engine,
        provider=candidate_info.provider,
        reference_engine=reference_info.engine,
        reference_provider=reference_info.provider,
        n_prompts=len(prompts),
        n_tokens=n_tokens,
        mismatched_tokens=mismatched,
        token_agreement=(n_tokens - mismatched) / n_tokens if n_tokens else 1.0,
        first_divergence=first,
        reference_margin_at_first_divergence=(
            first_diverging.reference_margin_at_divergence if first_diverging else None
        ),
        max_logit_diff=max_diff,
        max_logit_diff_unavailable_reason=unavailable_reason,
        max_mismatched_tokens=max_mismatched_tokens,
        passed=verdict != FAILED or mismatched <= max_mismatched_tokens,
        verdict=verdict,
        verdict_reason=reason,
        logit_scale=scale if scales else None,
        noise_floor_logit_diff=max(noise_diffs) if noise_known else None,
        noise_floor_threads=noise_threads if noise_known else None,
        decode_noise_logit_diff=max(decode_noises) if decode_known else None,
        per_prompt=tuple(comparisons),
        compute_precision=candidate_info.compute_precision,
        precision_settings=dict(candidate_info.precision_settings),
    )
