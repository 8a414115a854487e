"""OpenVINO through optimum-intel's OVModelForCausalLM: stateful KV-cache IR, CPU only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import EngineInfo, GenerateApiEngine, set_torch_threads
from .torch_engine import load_tokenizer


def runtime_config(threads: int) -> dict[str, str]:
    """OpenVINO CPU properties that keep it an fp32 engine at a fixed thread count.

    The CPU plugin picks bf16 inference on CPUs with AVX512-BF16/AMX and may quantise the KV cache
    to u8 by default: either changes the numbers, so fp32 is asked for explicitly.
    """
    return {
        "INFERENCE_NUM_THREADS": str(threads),
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "KV_CACHE_PRECISION": "f32",
        "CACHE_DIR": "",
    }


class OpenVinoEngine(GenerateApiEngine):
    name = "openvino"
    logits_unavailable_reason = None

    def __init__(self, provider: str, model_dir: Path, artefact_dir: Path, threads: int):
        from optimum.intel import OVModelForCausalLM

        if provider != "cpu":
            raise ValueError(
                "OpenVINO has no CUDA execution provider: only provider 'cpu' is valid"
            )
        set_torch_threads(threads)
        super().__init__(provider, load_tokenizer(artefact_dir), threads, model_dir, artefact_dir)
        self.ov_config = runtime_config(threads)
        self.model = OVModelForCausalLM.from_pretrained(
            str(artefact_dir), device="CPU", ov_config=self.ov_config, use_cache=True, compile=True
        )

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids, mask = self._input(token_ids)
        with torch.inference_mode():
            # Without past_key_values the stateful request starts from an empty cache.
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        return logits[0].float().cpu().numpy()

    def compiled_properties(self) -> dict[str, str]:
        names = (
            "INFERENCE_NUM_THREADS",
            "INFERENCE_PRECISION_HINT",
            "KV_CACHE_PRECISION",
            "PERFORMANCE_HINT",
            "EXECUTION_DEVICES",
        )
        compiled = self.model.request.get_compiled_model()
        found = {}
        for name in names:
            try:
                value = compiled.get_property(name)
                # Element types print as "<Type: 'float32'>"; record OpenVINO's short name ("f32").
                found[name] = (
                    value.get_type_name() if hasattr(value, "get_type_name") else str(value)
                )
            except RuntimeError:  # a property this plugin version does not report
                found[name] = "unavailable"
        return found

    def info(self) -> EngineInfo:
        return self._info(
            "cpu",
            ov_device="CPU",
            details={"ov_config": dict(self.ov_config), "compiled": self.compiled_properties()},
        )
