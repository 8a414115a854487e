"""Every engine on the CPU for every architecture: export, load, generate, ids as torch's."""

import dataclasses

import pytest

from .conftest import ARCHITECTURES, CHECKED_ENGINES, EXPORTED_ENGINES, NEW_TOKENS, PROMPTS, THREADS


@pytest.fixture(scope="session")
def torch_outputs(engines):
    return {
        architecture: [engines(architecture, "torch").generate(p, NEW_TOKENS) for p in PROMPTS]
        for architecture in ARCHITECTURES
    }


@pytest.mark.parametrize("engine", CHECKED_ENGINES)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_greedy_ids_equal_torch(architecture, engine, engines, torch_outputs):
    candidate = engines(architecture, engine)
    for prompt, expected in zip(PROMPTS, torch_outputs[architecture], strict=True):
        got = candidate.generate(prompt, NEW_TOKENS)
        assert got.new_token_ids == expected.new_token_ids, (architecture, engine, prompt)
        assert got.prompt_tokens == expected.prompt_tokens
        assert got.text == expected.text


def test_generation_record(engines):
    engine = engines("gpt2", "torch")
    generation = engine.generate(PROMPTS[0], NEW_TOKENS)
    assert len(generation.new_token_ids) == generation.new_tokens == NEW_TOKENS
    assert generation.prompt_tokens == engine.prompt_token_count(PROMPTS[0])
    assert generation.duration_s > 0
    assert generation.text == engine.tokenizer.decode(
        list(generation.new_token_ids), skip_special_tokens=True
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        generation.text = "changed"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_torchs_step_logits_are_those_its_ids_came_from(architecture, engines, torch_outputs):
    """generate_with_step_logits: the same ids as generate, and per step the logits whose argmax
    is that id (EOS barred), close to the full forward pass over the same ids."""
    import numpy as np

    from serving_energy.engines.base import eos_ids_of

    torch_engine = engines(architecture, "torch")
    generation, steps = torch_engine.generate_with_step_logits(PROMPTS[0], NEW_TOKENS)
    assert generation.new_token_ids == torch_outputs[architecture][0].new_token_ids
    assert steps.shape == (NEW_TOKENS, torch_engine.sequence_logits([0]).shape[-1])
    ids = torch_engine.encode(PROMPTS[0]) + list(generation.new_token_ids)
    full = torch_engine.sequence_logits(ids)[generation.prompt_tokens - 1 : -1]
    assert np.max(np.abs(full - steps)) < 1e-3 * max(1.0, float(np.max(np.abs(full))))
    barred = steps.copy()
    eos = eos_ids_of(torch_engine.tokenizer, torch_engine.model.generation_config)
    barred[:, list(eos)] = -np.inf
    assert list(np.argmax(barred, axis=1)) == list(generation.new_token_ids)


def test_prompt_lengths_vary_and_are_generalised_by_the_trace(engines):
    """The TorchScript trace uses an 8-token example; other lengths must give the same ids."""
    torch_engine, traced = engines("llama", "torch"), engines("llama", "torchscript")
    for prompt in ("x", "def f():\n    return [i * i for i in range(10) if i % 2 == 0]  # squares"):
        assert (
            traced.generate(prompt, 20).new_token_ids
            == torch_engine.generate(prompt, 20).new_token_ids
        )


@pytest.mark.parametrize("engine", ("torch", *CHECKED_ENGINES))
def test_info_records_engine_device_and_threads(engine, engines):
    info = engines("gpt_neox", engine).info()
    assert (info.engine, info.provider, info.device, info.threads) == (
        engine,
        "cpu",
        "cpu",
        THREADS,
    )
    assert info.library_versions["torch"] and info.library_versions["transformers"]
    if engine == "onnx":
        assert info.ort_providers == ("CPUExecutionProvider",)
        assert info.details["use_io_binding"] is False
    if engine == "openvino":
        assert info.ov_device == "CPU"
        compiled = info.details["compiled"]
        assert compiled["INFERENCE_NUM_THREADS"] == str(THREADS)
        assert "f32" in compiled["INFERENCE_PRECISION_HINT"]


def test_thread_counts_are_applied_not_inherited(standin_dirs, artefact_dirs):
    import torch

    from serving_energy.engines import load_engine

    torch.set_num_threads(2)
    onnx = load_engine("onnx", "cpu", standin_dirs["gpt2"], artefact_dirs["gpt2", "onnx"], 1)
    assert torch.get_num_threads() == 1
    assert onnx.model.session.get_session_options().intra_op_num_threads == 1
    assert onnx.info().threads == 1


def test_eos_cannot_end_generation_early(tmp_path, standin_dirs):
    """A model that always prefers EOS still yields max_new_tokens tokens, the same everywhere."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from serving_energy.engines import load_engine

    from .conftest import cpu_export

    model_dir = tmp_path / "phi-eos"
    shutil.copytree(standin_dirs["phi"], model_dir)
    eos = load_engine("torch", "cpu", model_dir, None, THREADS).tokenizer.eos_token_id
    weights = load_file(model_dir / "model.safetensors")
    weights["lm_head.bias"][eos] = 1e4
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})

    reference = load_engine("torch", "cpu", model_dir, None, THREADS)
    with torch.inference_mode():
        ids = torch.tensor([reference.encode(PROMPTS[0])])
        assert reference.model(ids).logits[0, -1].argmax().item() == eos
    expected = reference.generate(PROMPTS[0], NEW_TOKENS)
    assert len(expected.new_token_ids) == NEW_TOKENS and eos not in expected.new_token_ids

    for engine in EXPORTED_ENGINES:
        cpu_export(engine, model_dir, tmp_path / engine)
        candidate = load_engine(engine, "cpu", model_dir, tmp_path / engine, THREADS)
        assert candidate.generate(PROMPTS[0], NEW_TOKENS).new_token_ids == expected.new_token_ids
