"""TorchScript: a traced logits module and a real greedy decode loop around it.

The traced module has no KV cache (each step re-runs the whole sequence), so its cost grows with
the sequence length; that is the engine as it stands and is measured as such.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .base import (
    Engine,
    EngineError,
    EngineInfo,
    eos_ids_of,
    set_torch_threads,
    torch_device_for,
)
from .torch_engine import check_torch_device, load_tokenizer

TORCHSCRIPT_FILE = "model.pt"
EXPORT_FILE = "export.json"


class TorchScriptEngine(Engine):
    name = "torchscript"
    logits_unavailable_reason = None

    def __init__(self, provider: str, model_dir: Path, artefact_dir: Path, threads: int):
        import torch
        from transformers import GenerationConfig

        set_torch_threads(threads)
        super().__init__(provider, load_tokenizer(artefact_dir), threads, model_dir, artefact_dir)
        export_path = Path(artefact_dir) / EXPORT_FILE
        traced_for = (
            json.loads(export_path.read_text()).get("provider") if export_path.is_file() else None
        )
        if traced_for is not None and traced_for != provider:
            raise EngineError(
                f"{artefact_dir} was traced for provider {traced_for!r}, not {provider!r}: "
                "TorchScript traces bake in the device, export one per provider"
            )
        self.device = torch_device_for(provider)
        self.module = torch.jit.load(
            str(Path(artefact_dir) / TORCHSCRIPT_FILE), map_location=self.device
        )
        self.module.eval()
        try:
            generation_config = GenerationConfig.from_pretrained(artefact_dir)
        except OSError:
            generation_config = None
        self.eos_ids = list(eos_ids_of(self.tokenizer, generation_config))
        self._checked_device = False

    def _logits(self, ids):
        logits = self.module(ids)
        if not self._checked_device:
            check_torch_device(logits.device, self.provider, "the TorchScript module")
            self._checked_device = True
        return logits

    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        import torch

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        ids = torch.tensor([list(input_ids)], dtype=torch.long, device=self.device)
        new_ids = []
        with torch.inference_mode():
            for _ in range(max_new_tokens):
                next_logits = self._logits(ids)[0, -1, :].float()
                # Same rule as generate(min_new_tokens=max_new_tokens): EOS may not end early.
                if self.eos_ids:
                    next_logits[self.eos_ids] = float("-inf")
                next_id = torch.argmax(next_logits).view(1, 1)
                ids = torch.cat([ids, next_id], dim=1)
                new_ids.append(next_id)
        return torch.cat(new_ids, dim=1)[0].tolist()

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            return self._logits(ids)[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        return self._info(self.device, details={"kv_cache": False, "file": TORCHSCRIPT_FILE})
