"""torch.compile: the eager model with its decode step compiled by TorchInductor over a static KV
cache (PyTorch's answer to TorchScript since 2.0)."""

from __future__ import annotations

from dataclasses import dataclass

from serving_energy.study.engine_options import option
from serving_energy.study.engine_spec import EngineSpec

# torch.compile's modes that keep the arithmetic at fp32 and need no autotuning run per shape.
MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class TorchCompileOptions:
    """torch.compile settings (engine torch_compile)."""

    mode: str = option(
        "default",
        choices=MODES,
        description="torch.compile's mode for the decode step. 'default' (the study's); "
        "'reduce-overhead' adds CUDA graphs on a GPU and nothing on the CPU; "
        "'max-autotune-no-cudagraphs' tunes kernels per shape at load. All keep fp32.",
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"unknown torch_compile mode {self.mode!r}; expected one of {', '.join(MODES)}"
            )


SPEC = EngineSpec(
    id="torch_compile",
    label="COMPILE",
    summary="PyTorch eager prefill and a torch.compile'd (TorchInductor) decode step over a "
    "static KV cache, through transformers' generate",
    providers=("cpu", "cuda"),
    engine_class="serving_energy.engines.torch_compile_engine.engine:TorchCompileEngine",
    # The same packages as torch: its env is torch's (TorchInductor on the CPU also needs a C++
    # compiler on PATH, which the engine checks when it compiles at load).
    serving_envs={"cpu": "serve-torch", "cuda": "serve-torch"},
    packages=("torch", "transformers", "tokenizers"),
    options=TorchCompileOptions,
    # torch's load plus the decode step's compilation: 5-25 s at the smoke study's size on 2
    # cores (3 s with a warm inductor cache).
    load_bytes_per_s=1.0e9,
)
