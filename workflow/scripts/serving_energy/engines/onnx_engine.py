"""ONNX Runtime through optimum's ORTModelForCausalLM: one KV-cache graph, session built once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import (
    EngineError,
    EngineInfo,
    GenerateApiEngine,
    set_torch_threads,
    torch_device_for,
)
from .torch_engine import load_tokenizer

ORT_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def session_options(threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Batch-1 decoding has no independent graph branches worth a second pool of spinning threads.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


class OnnxEngine(GenerateApiEngine):
    name = "onnx"
    logits_unavailable_reason = None

    def __init__(self, provider: str, model_dir: Path, artefact_dir: Path, threads: int):
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
            use_cache=True,
            # IO binding keeps inputs, outputs and the KV cache on the GPU between steps.
            use_io_binding=(provider == "cuda"),
        )
        self.active_providers = tuple(self.model.session.get_providers())
        if provider == "cuda" and self.active_providers[0] != "CUDAExecutionProvider":
            raise EngineError(
                f"ONNX Runtime session fell back to {self.active_providers}: CUDA not really used"
            )

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids, mask = self._input(token_ids)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=True).logits
        return logits[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        device = self.torch_device if self.provider == "cuda" else "cpu"
        return self._info(
            device,
            ort_providers=self.active_providers,
            details={"use_io_binding": bool(self.model.use_io_binding)},
        )
