"""TorchScript with a KV cache: a traced prefill and decode step, verified at export, exact ids."""

import json
import shutil

import pytest

from serving_energy.engines import EngineError, load_engine
from serving_energy.engines.export import EXPORT_FILE, ExportError
from serving_energy.engines.torchscript_engine.export import export_torchscript

from .conftest import ARCHITECTURES, NEW_TOKENS, PROMPTS, THREADS


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_export_records_a_verified_kv_cache_trace(architecture, artefact_dirs, standin_dirs):
    info = json.loads((artefact_dirs[architecture, "torchscript"] / EXPORT_FILE).read_text())
    details = info["details"]
    assert details["kv_cache"] is True and details["format"] == "kv-cache-1"
    standin = json.loads((standin_dirs[architecture] / "standin.json").read_text())
    # One key and one value tensor per layer, each with the architecture's KV heads
    # (1 for gpt_bigcode's multi-query and gemma, 2 for llama's grouped-query attention).
    assert details["cache_tensors"] == 2 * standin["n_layers"]
    assert details["kv_heads"] == standin["n_kv_heads"]
    assert details["trace_example_tokens"] not in details["verified_prompt_tokens"]
    assert 1 in details["verified_prompt_tokens"]
    assert 0 <= details["verified_max_abs_logit_diff"] < 1e-4
    # The eager model batched against unbatched: recorded, and tiny at this size.
    assert 0 <= details["verified_noise_floor_logit_diff"] < 1e-3


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_decode_step_appends_one_position_to_the_cache(architecture, engines):
    import torch

    engine = engines(architecture, "torchscript")
    ids = torch.tensor([engine.encode(PROMPTS[2])])
    n = ids.shape[1]
    with torch.inference_mode():
        out = engine.module(ids, torch.tensor([n - 1]))
        logits, cache = out[0], list(out[1:])
        assert logits.shape[:2] == (1, 1)
        assert all(t.shape[-2] == n for t in cache)
        out = engine.module.decode(logits[0, -1].argmax().view(1, 1), cache)
    assert out[0].shape[:2] == (1, 1)
    assert all(t.shape[-2] == n + 1 for t in out[1:])


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_cached_decoding_matches_torch_on_long_generations(architecture, engines):
    """Beyond the shared 12-token test: 40 new tokens after a one-token and a long prompt,
    so the cache grows far past every length the trace and its verification saw."""
    traced, reference = engines(architecture, "torchscript"), engines(architecture, "torch")
    for prompt in ("x", PROMPTS[2]):
        assert (
            traced.generate(prompt, 40).new_token_ids
            == reference.generate(prompt, 40).new_token_ids
        )


def test_sequence_logits_equal_torch_at_every_position(engines):
    import numpy as np

    traced, reference = engines("gpt_neox", "torchscript"), engines("gpt_neox", "torch")
    ids = reference.encode(PROMPTS[2])
    got, want = traced.sequence_logits(ids), reference.sequence_logits(ids)
    assert got.shape == want.shape == (len(ids), want.shape[1])
    assert np.max(np.abs(got - want)) < 1e-4


def test_engine_is_warmed_up_at_load_and_says_so(engines):
    info = engines("llama", "torchscript").info()
    warmup = info.details["warmup"]
    assert len(set(warmup["prompt_tokens"])) >= 3 and warmup["decode_steps"] >= 1
    assert warmup["duration_s"] > 0
    assert info.details["kv_cache"] is True
    assert info.compute_precision == "f32"
    assert info.precision_settings["dtype"] == "float32"


def test_trace_of_another_model_fails_verification(standin_dirs):
    """The export-time check compares the saved trace with the eager model: a trace that does
    not reproduce it (here: traced from other weights) is refused with the reason."""
    import torch
    from transformers import AutoModelForCausalLM

    from serving_energy.engines.torchscript_engine.kv_trace import (
        TraceError,
        trace_kv_module,
        verify_kv_module,
    )

    traced_model = AutoModelForCausalLM.from_pretrained(standin_dirs["gpt2"]).eval()
    other = AutoModelForCausalLM.from_pretrained(standin_dirs["gpt2"]).eval()
    weight = other.transformer.h[0].mlp.c_fc.weight
    with torch.no_grad():
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(1)))
    module = trace_kv_module(traced_model, "gpt2", "cpu")
    with pytest.raises(TraceError, match=r"gpt2: traced logits differ .* prefill of 1 tokens"):
        verify_kv_module(module, other, "gpt2", "cpu")


def test_a_cache_that_cannot_be_flattened_is_refused():
    from serving_energy.engines.torchscript_engine.kv_trace import TraceError, flatten_cache

    with pytest.raises(TraceError, match="returns a tuple cache"):
        flatten_cache((("k", "v"),), "legacy_arch")


def test_untraceable_architecture_fails_its_export_with_the_reason(
    standin_dirs, tmp_path, monkeypatch
):
    """Without the traceable mask functions llama cannot be traced (transformers' vmap masks):
    the export fails naming the model and engine, leaves nothing, and does not fall back."""
    import contextlib

    from serving_energy.engines.torchscript_engine import kv_trace

    monkeypatch.setattr(kv_trace, "traceable_transformers", contextlib.nullcontext)
    out_dir = tmp_path / "ts"
    with pytest.raises(
        ExportError, match=r"architecture 'llama'.* to torchscript \(cpu\)"
    ) as raised:
        export_torchscript(standin_dirs["llama"], out_dir, "cpu")
    # Seen with transformers 4.57: the trace records, but bakes the example's shape in; the
    # verification at another length is what refuses it.
    assert "TraceError" in str(raised.value) or "unordered_map" in str(raised.value)
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".*partial*"))


def test_cacheless_export_of_an_older_version_is_refused(artefact_dirs, standin_dirs, tmp_path):
    old = tmp_path / "old-ts"
    shutil.copytree(artefact_dirs["gpt2", "torchscript"], old)
    export = json.loads((old / EXPORT_FILE).read_text())
    export["details"] = {"file": "model.pt", "kv_cache": False}
    (old / EXPORT_FILE).write_text(json.dumps(export))
    with pytest.raises(EngineError, match="format None.*export it again"):
        load_engine("torchscript", "cpu", standin_dirs["gpt2"], old, THREADS)


def test_new_tokens_are_exact_even_for_one_token(engines):
    traced, reference = engines("bloom", "torchscript"), engines("bloom", "torch")
    for count in (1, 2, NEW_TOKENS):
        got = traced.generate(PROMPTS[0], count)
        assert got.new_tokens == count
        assert got.new_token_ids == reference.generate(PROMPTS[0], count).new_token_ids
