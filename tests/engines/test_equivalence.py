import json
import shutil

import pytest

from serving_energy.engines import load_engine
from serving_energy.engines.equivalence import check_equivalence

from .conftest import CHECKED_ENGINES, EXPORTED_ENGINES, NEW_TOKENS, PROMPTS, THREADS, cpu_export


@pytest.mark.parametrize("engine", CHECKED_ENGINES)
def test_correct_engine_passes_with_small_logit_differences(engine, engines):
    result = check_equivalence(
        engines("gemma", engine), engines("gemma", "torch"), list(PROMPTS), NEW_TOKENS
    )
    assert result.passed
    assert result.token_agreement == 1.0 and result.mismatched_tokens == 0
    assert result.first_divergence is None
    assert result.reference_margin_at_first_divergence is None
    assert result.n_prompts == len(PROMPTS) and result.n_tokens == len(PROMPTS) * NEW_TOKENS
    assert result.max_logit_diff is not None and result.max_logit_diff < 1e-4
    assert (result.engine, result.provider, result.reference_engine) == (engine, "cpu", "torch")
    saved = json.loads(json.dumps(result.to_dict()))  # check.json's body
    assert saved["passed"] is True and saved["max_mismatched_tokens"] == 0


@pytest.fixture(scope="module")
def perturbed_model(standin_dirs, tmp_path_factory):
    """A copy of the gpt2 stand-in with one weight matrix changed: a 'wrong engine' source."""
    import torch
    from safetensors.torch import load_file, save_file

    model_dir = tmp_path_factory.mktemp("perturbed") / "gpt2"
    shutil.copytree(standin_dirs["gpt2"], model_dir)
    weights = load_file(model_dir / "model.safetensors")
    generator = torch.Generator().manual_seed(1)
    name = "transformer.h.1.mlp.c_proj.weight"
    weights[name] += torch.randn(weights[name].shape, generator=generator)
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    return model_dir


@pytest.mark.parametrize("engine", EXPORTED_ENGINES)
def test_an_export_of_other_weights_fails_the_check(engine, perturbed_model, standin_dirs, engines):
    out_dir = perturbed_model.parent / engine
    if not out_dir.exists():
        cpu_export(engine, perturbed_model, out_dir)
    # Loaded as if it were the export of the real model: the check must notice.
    wrong = load_engine(engine, "cpu", standin_dirs["gpt2"], out_dir, THREADS)
    result = check_equivalence(wrong, engines("gpt2", "torch"), list(PROMPTS), NEW_TOKENS)
    assert not result.passed
    assert result.first_divergence is not None
    prompt_index, token_index = result.first_divergence
    assert 0 <= prompt_index < len(PROMPTS) and 0 <= token_index < NEW_TOKENS
    assert result.token_agreement < 1.0
    assert result.max_logit_diff > 0.1
    assert result.reference_margin_at_first_divergence >= 0  # recorded to tell ties from faults

    tolerant = check_equivalence(
        wrong,
        engines("gpt2", "torch"),
        list(PROMPTS),
        NEW_TOKENS,
        max_mismatched_tokens=len(PROMPTS) * NEW_TOKENS,
    )
    assert tolerant.passed and tolerant.first_divergence == result.first_divergence


def test_perturbed_onnx_graph_fails_the_check(standin_dirs, engines, tmp_path):
    """Corrupt one initializer of an exported ONNX graph directly."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    out_dir = tmp_path / "onnx"
    cpu_export("onnx", standin_dirs["gpt2"], out_dir)
    model = onnx.load(out_dir / "model.onnx")
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(largest).copy()
    values += np.random.default_rng(0).normal(0.0, 1.0, values.shape).astype(values.dtype)
    largest.CopyFrom(numpy_helper.from_array(values, largest.name))
    onnx.save(model, out_dir / "model.onnx")
    wrong = load_engine("onnx", "cpu", standin_dirs["gpt2"], out_dir, THREADS)
    result = check_equivalence(wrong, engines("gpt2", "torch"), list(PROMPTS), NEW_TOKENS)
    assert not result.passed and result.first_divergence is not None


def test_no_prompts_is_an_error(engines):
    with pytest.raises(ValueError, match="at least one prompt"):
        check_equivalence(engines("gpt2", "torch"), engines("gpt2", "torch"), [], NEW_TOKENS)
