"""The equivalence verdicts at the logit magnitudes of the paper's scale.

A 1.4 B random-weight stand-in has logits of +-40; running one here would take minutes, so these
engines are a small bigram model (logits = a table row of the last token) scaled to that size:
what the judgement sees -- greedy ids, logits, margins -- is the same.
"""

from __future__ import annotations

import numpy as np
import pytest

from serving_energy.engines.base import EngineInfo, Generation
from serving_energy.engines.equivalence import check_equivalence
from serving_energy.engines.tolerance import (
    FAILED,
    IDENTICAL,
    NEAR_TIE,
    Divergence,
    judge,
    logit_scale,
    trace_tolerance,
)

VOCAB = 64
SCALE = 40.0  # the largest |logit| of a 1.4 B stand-in


class TableEngine:
    """Greedy decoding of a bigram table: the logits after token t are ``table[t]``."""

    logits_unavailable_reason = None

    def __init__(self, name: str, table: np.ndarray):
        self.name, self.table = name, table

    def encode(self, prompt: str) -> list[int]:
        return [ord(c) % VOCAB for c in prompt]

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        ids = self.encode(prompt)
        new = []
        for _ in range(max_new_tokens):
            new.append(int(np.argmax(self.table[(ids + new)[-1]])))
        return Generation(len(ids), tuple(new), "", 0.0)

    def sequence_logits(self, token_ids):
        return self.table[np.asarray(token_ids)]

    def info(self) -> EngineInfo:
        return EngineInfo(self.name, "cpu", "cpu", 2, "m", None)


def _reference_table(near_tie_row: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(0)
    table = rng.uniform(-SCALE, SCALE, size=(VOCAB, VOCAB))
    # Every row has a clear winner (margin >= 2) except one near tie of margin 0.05.
    for row in range(VOCAB):
        order = np.argsort(table[row])
        table[row, order[-1]] = table[row, order[-2]] + (
            0.05 if row == near_tie_row else 2.0 + row % 3
        )
    return table


PROMPTS = ["abc", "hello", "def f(x):", "zz"]


def _next_after(prompt: str) -> int:
    return ord(prompt[-1]) % VOCAB


def test_a_close_engine_is_identical_although_absolute_differences_exceed_1e3():
    reference = _reference_table()
    close = reference + np.random.default_rng(1).normal(0, 0.01, reference.shape)
    result = check_equivalence(
        TableEngine("onnx", close), TableEngine("torch", reference), PROMPTS, 6
    )
    assert result.verdict == IDENTICAL and result.passed
    assert result.max_logit_diff > 1e-3  # a fixed 1e-3 tolerance would have refused it
    assert result.logit_scale == pytest.approx(SCALE, rel=0.1)


def test_a_rounding_flip_on_a_near_tie_is_recorded_not_failed():
    tie_row = _next_after(PROMPTS[0])
    reference = _reference_table(near_tie_row=tie_row)
    flipped = reference.copy()
    top_two = np.argsort(reference[tie_row])[-2:]
    flipped[tie_row, top_two[0]] += 0.3  # 0.75 % of the scale flips the 0.05 margin
    flipped += np.random.default_rng(2).normal(0, 0.05, reference.shape)
    result = check_equivalence(
        TableEngine("openvino", flipped), TableEngine("torch", reference), PROMPTS, 6
    )
    assert result.mismatched_tokens > 0
    assert result.verdict == NEAR_TIE and result.passed, result.verdict_reason
    assert result.reference_margin_at_first_divergence == pytest.approx(0.05)
    assert result.first_divergence == (0, 0)


def test_a_broken_export_fails_at_the_same_scale():
    reference = _reference_table(near_tie_row=_next_after(PROMPTS[0]))
    broken = reference + np.random.default_rng(3).normal(0, SCALE / 2, reference.shape)
    result = check_equivalence(
        TableEngine("torchscript", broken), TableEngine("torch", reference), PROMPTS, 6
    )
    assert result.verdict == FAILED and not result.passed
    assert "of their scale" in result.verdict_reason


def test_a_divergence_that_rounding_cannot_explain_fails():
    # Small differences everywhere, but one row's clear winner (margin >= 2) swapped on purpose.
    reference = _reference_table()
    wrong = reference + np.random.default_rng(4).normal(0, 0.01, reference.shape)
    row = _next_after(PROMPTS[1])
    order = np.argsort(reference[row])
    wrong[row, order[-2]] = reference[row, order[-1]] + 1.0
    verdict, reason = judge([Divergence(2.0, 1.1)], 1.1, SCALE)
    assert verdict == FAILED and "not a rounding flip" in reason
    result = check_equivalence(
        TableEngine("onnx", wrong), TableEngine("torch", reference), PROMPTS, 6
    )
    assert result.verdict == FAILED and not result.passed


def test_the_noise_floor_is_measured_and_recorded():
    reference = _reference_table()
    engine = TableEngine("torch", reference)
    result = check_equivalence(
        TableEngine("onnx", reference),
        engine,
        PROMPTS,
        4,
        noise_logits=lambda ids: engine.sequence_logits(ids) + 1e-4,
        noise_threads=(2, 1),
    )
    assert result.noise_floor_logit_diff == pytest.approx(1e-4)
    assert result.noise_floor_threads == (2, 1)


def test_trace_tolerance_grows_with_the_logits():
    assert trace_tolerance(logit_scale([0.5, -0.2])) == 1e-3
    # The trace differences measured at 1.4 B (0.0035) and 2.7 B (0.0162) pass at their scale;
    # a baked-in position (off by the order of the logits) does not.
    assert 0.0035 <= trace_tolerance(40.0) and 0.0162 <= trace_tolerance(40.0)
    assert trace_tolerance(40.0) < 1.0


def test_trace_tolerance_allows_a_multiple_of_the_models_own_noise_never_the_scale():
    # phi-2's trace: 0.0617 on logits of 44, beyond 1e-3 of the scale; allowed where the eager
    # model's own batched-against-unbatched noise is 0.01.
    assert trace_tolerance(44.0) < 0.0617 <= trace_tolerance(44.0, noise_floor=0.01)
    # However noisy the model, a difference of the order of the logits never passes.
    assert trace_tolerance(44.0, noise_floor=10.0) == pytest.approx(0.44)
    assert trace_tolerance(44.0, noise_floor=0.0) == trace_tolerance(44.0)


class SteppingTableEngine(TableEngine):
    """A reference that, like torch, also returns the logits it generated from: here its full
    pass plus ``decode_noise`` (its KV-cache path computing the same logits another way)."""

    def __init__(self, name: str, table: np.ndarray, decode_noise: np.ndarray):
        super().__init__(name, table)
        self.decode_noise = decode_noise

    def generate_with_step_logits(self, prompt: str, max_new_tokens: int):
        generation = self.generate(prompt, max_new_tokens)
        ids = self.encode(prompt) + list(generation.new_token_ids)
        steps = self.table[np.asarray(ids[len(ids) - max_new_tokens - 1 : -1])]
        return generation, steps + self.decode_noise[: len(steps)]


def test_torchs_decode_noise_is_measured_per_prompt_and_recorded():
    reference = _reference_table()
    noise = np.full((6, VOCAB), 0.25)
    result = check_equivalence(
        TableEngine("onnx", reference), SteppingTableEngine("torch", reference, noise), PROMPTS, 6
    )
    assert result.verdict == IDENTICAL
    assert result.decode_noise_logit_diff == pytest.approx(0.25)
    assert all(p.reference_noise_logit_diff == pytest.approx(0.25) for p in result.per_prompt)


def test_a_flip_within_torchs_own_noise_is_a_near_tie_whatever_the_engines_difference():
    # stablecode-3b's TorchScript check: the trace's full pass equals torch's (difference 0), its
    # ids flipped where torch's margin (0.84) is below torch's own decode noise there.
    verdict, _ = judge([Divergence(0.84, 0.0, reference_noise=2.0)], 0.0, 59.7)
    assert verdict == NEAR_TIE
    verdict, reason = judge([Divergence(0.84, 0.0, reference_noise=0.1)], 0.0, 59.7)
    assert verdict == FAILED and "torch's own noise 0.1" in reason


def test_an_engine_within_a_multiple_of_torchs_noise_is_a_near_tie_never_near_the_scale():
    # stablecode-3b's OpenVINO check: 6.4 on a scale of 59.7 (0.107 of it), beyond the 0.1 share.
    assert judge([Divergence(0.0003, 6.4)], 6.4, 59.7)[0] == FAILED
    assert judge([Divergence(0.0003, 6.4, 3.0)], 6.4, 59.7, reference_noise=3.0)[0] == NEAR_TIE
    # However noisy torch is, a difference of the order of the logits fails.
    verdict, reason = judge([Divergence(0.0003, 30.0, 20.0)], 30.0, 59.7, reference_noise=20.0)
    assert verdict == FAILED and "of their scale" in reason
