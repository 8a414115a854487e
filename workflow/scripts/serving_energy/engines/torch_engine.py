"""The baseline: transformers' eager PyTorch model, loaded once, in inference mode."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import (
    Engine,
    EngineError,
    EngineInfo,
    greedy_generation_config,
    set_torch_threads,
    torch_device_for,
)


def load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def check_torch_device(tensor_device, provider: str, what: str) -> None:
    """Fail when a CUDA configuration's tensors are not on the GPU (and vice versa)."""
    wanted = "cuda" if provider == "cuda" else "cpu"
    if tensor_device.type != wanted:
        raise EngineError(
            f"{what} runs on {tensor_device}, but provider {provider!r} was asked for"
        )


class TorchEngine(Engine):
    name = "torch"
    logits_unavailable_reason = None

    def __init__(self, provider: str, model_dir: Path, threads: int):
        import torch
        from transformers import AutoModelForCausalLM

        set_torch_threads(threads)
        super().__init__(provider, load_tokenizer(model_dir), threads, model_dir, None)
        self.device = torch_device_for(provider)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.model.to(self.device).eval()
        check_torch_device(next(self.model.parameters()).device, provider, "the torch model")

    def _input(self, token_ids: Sequence[int]):
        import torch

        input_ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        return input_ids, torch.ones_like(input_ids)

    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        import torch

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
            )
        check_torch_device(out.device, self.provider, "torch generation")
        return out[0, ids.shape[1] :].tolist()

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids, mask = self._input(token_ids)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        return logits[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        return self._info(str(next(self.model.parameters()).device))
