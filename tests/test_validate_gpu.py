"""scripts/validate_gpu.py follows the engine plug-ins: every CUDA engine, judged by its own record
(the GPU run itself is the script's job on a lent GPU machine; here only its logic)."""

from __future__ import annotations

import importlib.util

import pytest

from serving_energy.study.vocabulary import ENGINE_SPECS, REFERENCE_ENGINE
from tests.helpers import REPO

_spec = importlib.util.spec_from_file_location("validate_gpu", REPO / "scripts" / "validate_gpu.py")
validate_gpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(validate_gpu)

TORCH_FP32 = {"cuda_matmul_allow_tf32": False, "dtype": "float32"}


def test_it_runs_every_engine_with_a_cuda_provider_the_reference_first():
    assert validate_gpu.CUDA_ENGINES == tuple(
        e for e, s in ENGINE_SPECS.items() if "cuda" in s.providers
    )
    assert {"torch_compile", "llama_cpp"} <= set(validate_gpu.CUDA_ENGINES)
    assert "openvino" not in validate_gpu.CUDA_ENGINES
    assert validate_gpu.cuda_engines(["llama_cpp", "onnx"]) == [
        REFERENCE_ENGINE,
        "onnx",
        "llama_cpp",
    ]


def test_the_tokenizer_follows_the_engines_and_an_impossible_stand_in_is_refused(capsys):
    assert validate_gpu.parse_args(["out", "--engines", "onnx"]).tokenizer == "bpe-humaneval"
    # llama.cpp's converter knows GPT-2's BPE only
    assert validate_gpu.parse_args(["out"]).tokenizer == "gpt2"
    with pytest.raises(SystemExit):
        validate_gpu.parse_args(["out", "--engines", "llama_cpp", "--architectures", "gemma"])
    assert "<LLAMA.CPP, CUDA> cannot take a gemma stand-in" in capsys.readouterr().err
    # not named: the pair is left out, with its reason, and the others run
    args = validate_gpu.parse_args(["out", "--architectures", "gpt2", "gemma"])
    assert list(args.impossible) == [("llama_cpp", "gemma")]
    assert "SentencePiece" in args.impossible["llama_cpp", "gemma"]


@pytest.mark.parametrize(
    ("info", "fp32"),
    [
        ({"engine": "torch", "compute_precision": "f32", "precision_settings": TORCH_FP32}, True),
        ({"engine": "torch_compile", "compute_precision": "f32",
          "precision_settings": {**TORCH_FP32, "cuda_matmul_allow_tf32": True}}, False),
        # an engine on torch that does not record the TF32 switch is not taken as fp32
        ({"engine": "torch_compile", "compute_precision": "f32", "precision_settings": {}}, False),
        ({"engine": "onnx", "compute_precision": "f32", "ort_providers": ["CUDAExecutionProvider"],
          "precision_settings": {"cuda_use_tf32": "0"}}, True),
        ({"engine": "onnx", "compute_precision": "f32", "ort_providers": ["CUDAExecutionProvider"],
          "precision_settings": {}}, False),
        ({"engine": "llama_cpp", "compute_precision": "f32",
          "precision_settings": {"weight_type": "f32"}}, True),
        ({"engine": "llama_cpp", "compute_precision": "f16",
          "precision_settings": {"weight_type": "f16"}}, False),
    ],
)  # fmt: skip
def test_fp32_is_what_each_engine_records(info, fp32):
    assert validate_gpu.precision_is_fp32(info) is fp32


@pytest.mark.parametrize(
    ("info", "on_cuda"),
    [
        ({"device": "cuda:0"}, True),
        ({"device": "cpu"}, False),
        ({"device": "cuda:0", "ort_providers": ["CPUExecutionProvider"]}, False),
        ({"device": "cuda:0", "details": {"gpu_offload_supported": True},
          "precision_settings": {"n_gpu_layers": 1_000_000}}, True),
        ({"device": "cuda:0", "details": {"gpu_offload_supported": False},
          "precision_settings": {"n_gpu_layers": 1_000_000}}, False),
        ({"device": "cuda:0", "details": {"gpu_offload_supported": True},
          "precision_settings": {"n_gpu_layers": 0}}, False),
    ],
)  # fmt: skip
def test_the_gpu_is_what_each_engine_records(info, on_cuda):
    assert validate_gpu.really_on_cuda(info) is on_cuda


def test_the_report_names_each_configuration_by_its_label():
    report = {
        "environment": {},
        "n_prompts": 2,
        "max_new_tokens": 4,
        "started_at": "now",
        "engines": ["torch", "torch_compile", "llama_cpp"],
        "results": [
            {"architecture": "gpt2", "engine": e, "ok": False, "error": f"{e} failed"}
            for e in ("torch", "torch_compile", "llama_cpp")
        ],
        "not_run": [{"architecture": "gemma", "engine": "llama_cpp", "reason": "no vocabulary"}],
        "all_ok": False,
    }
    text = validate_gpu.markdown(report)
    assert "| gemma | <LLAMA.CPP, CUDA> | not run |" in text
    for label in ("<TORCH, CUDA>", "<COMPILE, CUDA>", "<LLAMA.CPP, CUDA>"):
        assert f"| gpt2 | {label} |" in text
    assert "- Engines: torch, torch_compile, llama_cpp" in text
