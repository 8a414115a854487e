"""The config checks, the CUDA policy and the run order (the vocabulary: tests/test_vocabulary.py)."""

from __future__ import annotations

import pytest

from serving_energy.study.design import (
    apply_cuda_policy,
    check_config,
    model_priorities,
    run_priorities,
)
from serving_energy.study.vocabulary import ConfigError, Configuration

CPU = [Configuration(e, "cpu") for e in ("torch", "onnx", "openvino", "torchscript")]
CUDA = [Configuration(e, "cuda") for e in ("torch", "onnx", "torchscript")]


def test_cuda_policy():
    everything = CPU + CUDA
    assert apply_cuda_policy(everything, "auto", gpu_present=True).configurations == tuple(
        everything
    )
    without_gpu = apply_cuda_policy(everything, "auto", gpu_present=False)
    assert without_gpu.configurations == tuple(CPU)
    assert without_gpu.excluded == tuple(CUDA)
    assert "cuda={policy: require}" in without_gpu.warning
    assert apply_cuda_policy(everything, "require", gpu_present=False).configurations == tuple(
        everything
    )
    assert "'skip'" in apply_cuda_policy(everything, "skip", gpu_present=True).warning
    assert apply_cuda_policy(CPU, "auto", gpu_present=False).warning is None


def test_run_order_is_a_seeded_permutation():
    runs = [(m, c.id, r) for m in ("a", "b") for c in CPU for r in (1, 2, 3)]
    random_order = run_priorities(runs, "random", seed=1)
    assert sorted(random_order.values()) == list(range(1, len(runs) + 1))
    assert random_order == run_priorities(runs, "random", seed=1)
    assert random_order != run_priorities(runs, "random", seed=2)
    fixed = run_priorities(runs, "fixed", seed=1)
    assert sorted(runs, key=fixed.get, reverse=True) == runs


def test_by_model_order_finishes_each_model_before_the_next():
    runs = [(m, c.id, r) for m in ("b", "a", "c") for c in CPU for r in (1, 2, 3)]
    by_model = run_priorities(runs, "by_model", seed=1)
    ordered = sorted(runs, key=by_model.get, reverse=True)
    assert [model for model, _, _ in ordered] == sorted(
        (model for model, _, _ in runs), key="bac".index
    )
    assert [run for run in ordered if run[0] == "b"] != [run for run in runs if run[0] == "b"]
    models = model_priorities(by_model, "by_model")
    # A model's exports outrank every job of the models after it.
    assert models["b"] > max(p for run, p in by_model.items() if run[0] != "b")
    assert models["a"] > max(p for run, p in by_model.items() if run[0] == "c")
    assert model_priorities(run_priorities(runs, "random", seed=1), "random") == {}
    with pytest.raises(ConfigError, match="by_model"):
        run_priorities(runs, "sorted", seed=1)


def test_check_config_lists_every_problem():
    config = {
        "configurations": [
            {"engine": "torch", "provider": "cpu"},
            {"engine": "torch", "provider": "cpu"},
        ],
        "models": {
            "x": {"size_category": 1},
            "y": {
                "standin": {"architecture": "gpt2", "hidden_size": 10, "heads": 4},
                "size_category": 1,
            },
        },
        "prompts": {"tokenizer": "t"},
        "tokenizers": {},
    }
    with pytest.raises(ConfigError) as error:
        check_config(config)
    message = str(error.value)
    assert "configurations[1]: <TORCH, CPU> is listed twice" in message
    assert "models.x: has no model id" in message
    assert "models.y.standin: hidden_size 10 is not divisible by heads 4" in message
    assert "prompts.tokenizer: 't'" in message


def test_engine_ids_configuration_ids_and_options_are_checked_against_the_plug_ins():
    """The schema lists no engine: check_config names what the plug-ins do not know."""
    config = {
        "configurations": [{"engine": "torch_compiled", "provider": "cpu"}],
        "engines": {"openvino": {"precision": "f32"}, "torch_compile": {"mode": "fastest"}},
        "analysis": {"configurations": {"include": ["torch_compile-cpu", "onx-cpu"]}},
        "models": {},
        "prompts": {},
        "tokenizers": {},
    }
    with pytest.raises(ConfigError) as error:
        check_config(config)
    message = str(error.value)
    assert "configurations[0]: unknown engine 'torch_compiled'" in message
    assert "engines.openvino: engine 'openvino' has no option precision" in message
    assert "engines.torch_compile: unknown torch_compile mode 'fastest'" in message
    assert "analysis.configurations.include[1]: unknown configuration 'onx-cpu'" in message
    assert "did you mean 'onnx-cpu'?" in message
    assert "include[0]" not in message


def test_the_2026_study_is_the_papers_with_torch_compile_and_llama_cpp_beside_its_engines():
    from tests.helpers import load_config

    paper, engines_2026 = load_config("config.yaml"), load_config("engines-2026.yaml")
    added = [c for c in engines_2026["configurations"] if c not in paper["configurations"]]
    assert added == [
        {"engine": "torch_compile", "provider": "cpu"},
        {"engine": "llama_cpp", "provider": "cpu"},
        {"engine": "torch_compile", "provider": "cuda"},
        {"engine": "llama_cpp", "provider": "cuda"},
    ]
    assert all(c in engines_2026["configurations"] for c in paper["configurations"])
    assert not any(c["engine"] in ("torch_compile", "llama_cpp") for c in paper["configurations"])
    for key in ("models", "prompts", "protocol", "generation", "repetitions", "analysis"):
        assert engines_2026[key] == paper[key], key
    check_config(engines_2026)


def test_a_standin_that_llama_cpp_cannot_convert_is_refused_before_anything_runs():
    """llama.cpp's converter knows GPT-2's tokenizer, not the trained one, and no gemma stand-in:
    the config check names the model, the engine and the way out."""
    import copy

    from tests.helpers import load_config

    config = load_config("smoke.yaml")
    check_config(config)
    broken = copy.deepcopy(config)
    broken["models"]["tiny-gpt2"]["standin"]["tokenizer"] = "bpe-humaneval"
    broken["models"]["tiny-llama"]["standin"]["architecture"] = "gemma"
    with pytest.raises(ConfigError) as raised:
        check_config(broken)
    message = str(raised.value)
    assert "models.tiny-gpt2.standin: engine llama_cpp cannot take it" in message
    assert "not 'bpe-humaneval'" in message
    assert "models.tiny-llama.standin: engine llama_cpp cannot take it" in message
    assert "SentencePiece" in message
    without = copy.deepcopy(broken)
    without["configurations"] = [c for c in broken["configurations"] if c["engine"] != "llama_cpp"]
    check_config(without)
