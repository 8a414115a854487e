"""ONNX Runtime through optimum's ORTModelForCausalLM: one KV-cache graph, session built once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from serving_energy.data.tokenizer import load_tokenizer
from serving_energy.engines.base import (
    EngineError,
    EngineInfo,
    GenerateApiEngine,
    set_torch_threads,
    torch_device_for,
)

ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# ONNX Runtime's CUDA provider runs fp32 MatMul/Gemm in TF32 on Ampere and later unless told not
# to; torch does not, and on an H200 TF32 moved logits by ~1e-2 and failed the equivalence check.
CUDA_PROVIDER_OPTIONS = {"use_tf32": "0"}


def session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Batch-1 decoding has no independent graph branches worth a second pool of spinning threads.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # ORT's own default, set so that the level is a recorded choice: fusions that keep fp32.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def provider_options(provider: str) -> dict[str, str]:
    return dict(CUDA_PROVIDER_OPTIONS) if provider == "cuda" else {}


class OnnxEngine(GenerateApiEngine):
    name = "onnx"
    logits_unavailable_reason = None

    def __init__(
        self, provider: str, model_dir: Path, artefact_dir: Path, threads: int, options: None = None
    ):
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForCausalLM

        set_torch_threads(threads)
        super().__init__(provider, load_tokenizer(artefact_dir), threads, model_dir, artefact_dir)
        ort_provider = ORT_PROVIDERS[provider]
        if ort_provider not in ort.get_available_providers():
            raise EngineError(
                f"onnxruntime has no {ort_provider} in this environment (available: "
                f"{ort.get_available_providers()}); provider {provider!r} needs onnxruntime-gpu"
            )
        if provider == "cuda":
            self.torch_device = torch_device_for(provider)
        else:
            self.torch_device = "cpu"
        self.input_device = self.torch_device
        self.model = ORTModelForCausalLM.from_pretrained(
            artefact_dir,
            provider=ort_provider,
            session_options=session_options(threads),
            provider_options=provider_options(provider),
            use_cache=True,
            # IO binding keeps inputs, outputs and the KV cache on the GPU between steps.
            use_io_binding=(provider == "cuda"),
        )
        self.active_providers = tuple(self.model.session.get_providers())
        if provider == "cuda" and self.active_providers[0] != "CUDAExecutionProvider":
            raise EngineError(
                f"ONNX Runtime session fell back to {self.active_providers}: CUDA not really used"
            )
        if provider == "cuda" and self.cuda_use_tf32() != "0":
            raise EngineError(
                f"ONNX Runtime's CUDA provider reports use_tf32={self.cuda_use_tf32()!r} although "
                "0 was asked for: fp32 MatMuls would run in TF32"
            )

    def cuda_use_tf32(self) -> str | None:
        """The CUDA provider's use_tf32 as the session reports it (None without CUDA)."""
        options = self.model.session.get_provider_options().get("CUDAExecutionProvider")
        return None if options is None else str(options.get("use_tf32"))

    def precision_settings(self) -> dict:
        session = self.model.session
        session_options = session.get_session_options()
        settings = {
            # The element type of the graph's logits: fp32 export unless someone changed it.
            "dtype": next(
                (o.type for o in session.get_outputs() if o.name == "logits"),
                session.get_outputs()[0].type,
            ),
            "graph_optimization_level": str(session_options.graph_optimization_level),
            "execution_mode": str(session_options.execution_mode),
            "intra_op_num_threads": session_options.intra_op_num_threads,
            "inter_op_num_threads": session_options.inter_op_num_threads,
            "use_io_binding": bool(self.model.use_io_binding),
        }
        if self.provider == "cuda":
            settings["cuda_use_tf32"] = self.cuda_use_tf32()
        return settings

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids, mask = self._input(token_ids)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=True).logits
        return logits[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        device = self.torch_device if self.provider == "cuda" else "cpu"
        settings = self.precision_settings()
        tf32 = self.provider == "cuda" and settings.get("cuda_use_tf32") != "0"
        return self._info(
            device,
            ort_providers=self.active_providers,
            details={"use_io_binding": bool(self.model.use_io_binding)},
            compute_precision="tf32" if tf32 else "f32",
            precision_settings=settings,
        )
