"""The baseline: transformers' eager PyTorch model, loaded once, in inference mode."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from serving_energy.data.tokenizer import load_tokenizer
from serving_energy.engines.base import (
    EngineError,
    EngineInfo,
    GenerateApiEngine,
    greedy_generation_config,
    pin_torch_fp32,
    set_torch_threads,
    torch_compute_precision,
    torch_device_for,
    torch_precision_settings,
)


def check_torch_device(tensor_device, provider: str, what: str) -> None:
    """Fail when a CUDA configuration's tensors are not on the GPU (and vice versa)."""
    wanted = "cuda" if provider == "cuda" else "cpu"
    if tensor_device.type != wanted:
        raise EngineError(
            f"{what} runs on {tensor_device}, but provider {provider!r} was asked for"
        )


class EagerModelEngine(GenerateApiEngine):
    """transformers' model folder loaded in fp32 on the provider's device: torch, and the base
    torch.compile compiles on."""

    logits_unavailable_reason = None

    def __init__(self, provider: str, model_dir: Path, threads: int):
        import torch
        from transformers import AutoModelForCausalLM

        set_torch_threads(threads)
        pin_torch_fp32()
        super().__init__(provider, load_tokenizer(model_dir), threads, model_dir, None)
        self.device = torch_device_for(provider)
        self.input_device = self.device
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.model.to(self.device).eval()
        check_torch_device(next(self.model.parameters()).device, provider, "the torch model")

    def _check_output(self, out) -> None:
        check_torch_device(out.device, self.provider, f"{self.name} generation")

    def _torch_info(self, **kwargs) -> EngineInfo:
        return self._info(
            str(next(self.model.parameters()).device),
            compute_precision=torch_compute_precision(self.provider),
            precision_settings={
                **torch_precision_settings(),
                "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
                "attention": self.model.config._attn_implementation,
            },
            **kwargs,
        )


class TorchEngine(EagerModelEngine):
    name = "torch"

    def __init__(
        self, provider: str, model_dir: Path, artefact_dir: None, threads: int, options: None = None
    ):
        super().__init__(provider, model_dir, threads)

    def generate_with_step_logits(self, prompt: str, max_new_tokens: int):
        """``generate()``, and the logits each greedy step chose from (numpy [n, vocab]): torch's
        incremental arithmetic with its KV cache. The equivalence check compares them with the
        full forward pass over the same ids: torch's own fp32 noise on the path it generates by
        (the same ids either way, so this costs no extra pass)."""
        import numpy as np
        import torch

        start = time.perf_counter()
        input_ids = self.encode(prompt)
        if not input_ids:
            raise ValueError("empty prompt: nothing to condition the generation on")
        ids, mask = self._input(input_ids)
        config = greedy_generation_config(
            self.tokenizer, max_new_tokens, self.model.generation_config
        )
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                use_model_defaults=False,
                output_logits=True,  # raw logits, before the processor that bars an early EOS
                return_dict_in_generate=True,
            )
        self._check_output(out.sequences)
        new_ids = out.sequences[0, ids.shape[1] :].tolist()
        generation = self._generation(input_ids, new_ids, max_new_tokens, start)
        steps = np.stack([step[0].float().cpu().numpy() for step in out.logits])
        return generation, steps

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids, mask = self._input(token_ids)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        return logits[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        return self._torch_info()
