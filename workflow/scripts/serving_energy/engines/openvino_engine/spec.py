"""OpenVINO through optimum-intel: a stateful KV-cache IR on the CPU (it has no CUDA device)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from serving_energy.study.engine_options import option
from serving_energy.study.engine_spec import BYTES_PER_FP32, EngineSpec

# "default" leaves the choice to OpenVINO's CPU plugin: bf16 on CPUs with AVX512-BF16 or AMX (what
# optimum-intel runs unless told otherwise), f32 elsewhere; the precision used is read back.
INFERENCE_PRECISIONS = ("f32", "bf16", "default")
WEIGHT_FORMAT_BYTES = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0}


@dataclass(frozen=True)
class OpenVinoOptions:
    """OpenVINO runtime settings (engine openvino)."""

    inference_precision: str = option(
        "f32",
        choices=INFERENCE_PRECISIONS,
        description="OpenVINO's INFERENCE_PRECISION_HINT. 'f32' (fp32 like the other engines, fp32 "
        "KV cache) or 'bf16' (bf16 arithmetic and KV cache) are pinned; 'default' sets nothing "
        "and lets the CPU plugin choose -- bf16 with a u8/f16 KV cache on CPUs with AVX512-BF16 "
        "or AMX -- which is what optimum-intel runs unless told otherwise (the paper's setup). "
        "bf16 runs are expected to fail the token-equivalence check against fp32 torch.",
    )

    def __post_init__(self) -> None:
        if self.inference_precision not in INFERENCE_PRECISIONS:
            raise ValueError(
                f"unknown OpenVINO inference_precision {self.inference_precision!r}; "
                f"expected one of {', '.join(INFERENCE_PRECISIONS)}"
            )


def _export_settings(config: Mapping) -> dict[str, str]:
    return {"weight_format": config["export"]["openvino_weight_format"]}


def _artefact_bytes(config: Mapping) -> float:
    return WEIGHT_FORMAT_BYTES[config["export"]["openvino_weight_format"]]


def _read_bytes(config: Mapping) -> float:
    """int8 weights are read as int8; 'default' is bf16 on AVX512-BF16/AMX CPUs and f32
    elsewhere, so the plan takes bf16, the faster, only where the config says bf16."""
    if config["export"]["openvino_weight_format"] == "int8":
        return 1.0
    if (config.get("engines") or {}).get("openvino", {}).get("inference_precision") == "bf16":
        return 2.0
    return BYTES_PER_FP32


SPEC = EngineSpec(
    id="openvino",
    label="OV",
    summary="OpenVINO (optimum-intel's OVModelForCausalLM), a stateful KV-cache IR",
    providers=("cpu",),
    unsupported={
        "cuda": "OpenVINO has no CUDA execution provider "
        "(use <OV, CPU>, or onnx/torch/torchscript on cuda)"
    },
    engine_class="serving_energy.engines.openvino_engine.engine:OpenVinoEngine",
    exporter="serving_energy.engines.openvino_engine.export:export_openvino",
    export_env="export-openvino",
    packages=("optimum-intel", "openvino"),
    options=OpenVinoOptions,
    export_settings=_export_settings,
    # Measured at 1.41 B (issue 20): 38 s; peaks 1.42 and 1.22 fp32 copies at 1.4 B and 2.8 B.
    export_seconds=(8.0, 22.0),
    export_weight_copies=1.5,
    load_bytes_per_s=0.4e9,
    artefact_bytes_per_parameter=_artefact_bytes,
    read_bytes_per_parameter=_read_bytes,
)
