"""llama.cpp: the model converted to one GGUF file and decoded by llama.cpp's C library (through
llama-cpp-python's ctypes bindings), the engine practitioners pick for a small model on a CPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serving_energy.study.engine_options import option
from serving_energy.study.engine_spec import EngineSpec

GGUF_FILE = "model.gguf"  # the artefact's one weights file

# GGUF weight types of llama.cpp's converter (``--outtype``) and the bytes each stores per
# weight: q8_0 keeps 32 int8 weights and one fp16 scale per block (34 bytes per 32 weights).
WEIGHT_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32}


@dataclass(frozen=True)
class LlamaCppOptions:
    """llama.cpp settings (engine llama_cpp)."""

    weight_type: str = option(
        "f32",
        choices=WEIGHT_TYPE_BYTES,
        description="The GGUF's weight type, written by llama.cpp's converter (--outtype) and "
        "checked by the engine at load. 'f32' (the study's, for parity with the fp32 engines); "
        "'f16', 'bf16' and 'q8_0' (8-bit blocks) are other precisions, recorded as such; expect "
        "their token-equivalence check against fp32 torch to fail.",
    )

    def __post_init__(self) -> None:
        if self.weight_type not in WEIGHT_TYPE_BYTES:
            raise ValueError(
                f"unknown llama_cpp weight_type {self.weight_type!r}; "
                f"expected one of {', '.join(WEIGHT_TYPE_BYTES)}"
            )


def weight_type_of(config: Mapping) -> str:
    settings = (config.get("engines") or {}).get("llama_cpp") or {}
    return LlamaCppOptions(**settings).weight_type


def _export_settings(config: Mapping) -> dict[str, str]:
    return {"weight_type": weight_type_of(config)}


def _weight_bytes(config: Mapping) -> float:
    return WEIGHT_TYPE_BYTES[weight_type_of(config)]


SPEC = EngineSpec(
    id="llama_cpp",
    label="LLAMA.CPP",
    summary="llama.cpp (a GGUF file from llama.cpp's converter, decoded by its C library "
    "through llama-cpp-python)",
    providers=("cpu", "cuda"),
    engine_class="serving_energy.engines.llama_cpp_engine.engine:LlamaCppEngine",
    exporter="serving_energy.engines.llama_cpp_engine.export:export_gguf",
    export_env="export-llama_cpp",
    packages=("llama-cpp-python",),
    options=LlamaCppOptions,
    export_settings=_export_settings,
    # The converter identifies a BPE tokenizer by the hash of its output on a test text and
    # refuses any it does not list: of the offline tokenizers it knows GPT-2's only.
    standin_tokenizers=("gpt2",),
    standin_unsupported={
        "gemma": "llama.cpp's converter reads gemma's vocabulary from a SentencePiece "
        "tokenizer.model, which no offline stand-in has (a Hub gemma model ships one)"
    },
    # The converter reads the safetensors and writes one file: about a build's time; it holds
    # one copy of the weights (read lazily) and the file is written as it goes.
    export_seconds=(8.0, 40.0),
    export_weight_copies=1.5,
    load_bytes_per_s=1.0e9,
    artefact_bytes_per_parameter=_weight_bytes,
    read_bytes_per_parameter=_weight_bytes,
)
