"""TorchScript: a traced prefill and decode step over an explicit KV cache, greedy loop in Python.

The artefact (``export_torchscript``, module layout in ``kv_trace``) holds one ScriptModule with two
methods sharing the weights: ``forward`` runs the prompt and returns the cache, ``decode`` appends one
token to it. So each new token costs one step over the cache, as in the other engines.

TorchScript's profiling executor optimises a graph after its first calls and may specialise it to
the shapes it saw; both methods are therefore run at several prompt and cache lengths while the
engine loads, outside any measured window (``warm_up``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from serving_energy.data.tokenizer import load_tokenizer
from serving_energy.engines.base import (
    Engine,
    EngineError,
    EngineInfo,
    eos_ids_of,
    pin_torch_fp32,
    set_torch_threads,
    torch_compute_precision,
    torch_device_for,
    torch_precision_settings,
)
from serving_energy.engines.torch_engine.engine import check_torch_device

TORCHSCRIPT_FILE = "model_kv.pt"
# Bumped when the traced module's calling convention changes; other formats are refused.
TORCHSCRIPT_FORMAT = "kv-cache-1"
EXPORT_FILE = "export.json"
# Distinct prompt lengths, then decode steps after each: more shapes than the profiling executor's
# default fusion strategy specialises on (2 static, then dynamic), so serving meets none it has not
# optimised for. Short, so loading stays cheap.
WARMUP_PROMPT_TOKENS = (3, 5, 9, 17)
WARMUP_DECODE_STEPS = 3


@dataclass(frozen=True)
class WarmUp:
    prompt_tokens: tuple[int, ...]
    decode_steps: int
    duration_s: float


def read_trace_export(artefact_dir: Path, provider: str) -> dict:
    """export.json of a KV-cache trace made for ``provider``; EngineError for anything else."""
    path = Path(artefact_dir) / EXPORT_FILE
    if not path.is_file():
        raise EngineError(
            f"{artefact_dir} holds no {EXPORT_FILE}: not a complete TorchScript export"
        )
    export = json.loads(path.read_text())
    traced_for = export.get("provider")
    if traced_for != provider:
        raise EngineError(
            f"{artefact_dir} was traced for provider {traced_for!r}, not {provider!r}: "
            "TorchScript traces bake in the device, export one per provider"
        )
    found = export.get("details", {}).get("format")
    if found != TORCHSCRIPT_FORMAT:
        raise EngineError(
            f"{artefact_dir} is a TorchScript export in format {found!r}, not {TORCHSCRIPT_FORMAT!r} "
            "(exports before the KV-cache trace had none and re-ran the whole sequence per token): "
            "export it again"
        )
    return export


class TorchScriptEngine(Engine):
    name = "torchscript"
    logits_unavailable_reason = None

    def __init__(
        self, provider: str, model_dir: Path, artefact_dir: Path, threads: int, options: None = None
    ):
        import torch
        from transformers import GenerationConfig

        set_torch_threads(threads)
        pin_torch_fp32()
        super().__init__(provider, load_tokenizer(artefact_dir), threads, model_dir, artefact_dir)
        self.export = read_trace_export(Path(artefact_dir), provider)
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
        self._eos_index = torch.tensor(self.eos_ids, dtype=torch.long, device=self.device)
        self.vocab_size = int(
            json.loads((Path(artefact_dir) / "config.json").read_text())["vocab_size"]
        )
        self.warmup = self.warm_up()

    def warm_up(self) -> WarmUp:
        """Run prefill and decode at several lengths so no request pays for JIT optimisation."""
        import torch

        started = time.perf_counter()
        with torch.inference_mode():
            for n_tokens in WARMUP_PROMPT_TOKENS:
                ids = [(7 * i + 3) % self.vocab_size for i in range(n_tokens)]
                self._generate(ids, WARMUP_DECODE_STEPS + 1)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return WarmUp(WARMUP_PROMPT_TOKENS, WARMUP_DECODE_STEPS, time.perf_counter() - started)

    def _prefill(self, ids, logit_positions):
        out = self.module(ids, logit_positions)
        check_torch_device(out[0].device, self.provider, "the TorchScript module")
        return out[0], list(out[1:])

    def _generate(self, input_ids: Sequence[int], max_new_tokens: int):
        import torch

        ids = torch.tensor([list(input_ids)], dtype=torch.long, device=self.device)
        last = torch.tensor([ids.shape[1] - 1], dtype=torch.long, device=self.device)
        logits, cache = self._prefill(ids, last)
        new_ids = []
        for step in range(max_new_tokens):
            next_logits = logits[0, -1, :]
            # Same rule as generate(min_new_tokens=max_new_tokens): EOS may not end early.
            if self.eos_ids:
                next_logits = next_logits.index_fill(0, self._eos_index, float("-inf"))
            next_id = torch.argmax(next_logits).view(1, 1)
            new_ids.append(next_id)
            if step + 1 < max_new_tokens:  # the last token's logits are never used
                out = self.module.decode(next_id, cache)
                logits, cache = out[0], list(out[1:])
        # Ids stay on the device until here: no per-token synchronisation with a GPU.
        return torch.cat(new_ids, dim=1)[0].tolist()

    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        import torch

        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        with torch.inference_mode():
            return self._generate(input_ids, max_new_tokens)

    def sequence_logits(self, token_ids: Sequence[int]):
        import torch

        ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        positions = torch.arange(ids.shape[1], device=self.device)
        with torch.inference_mode():
            logits, _ = self._prefill(ids, positions)
        return logits[0].float().cpu().numpy()

    def info(self) -> EngineInfo:
        import torch

        details = self.export.get("details", {})
        return self._info(
            self.device,
            compute_precision=torch_compute_precision(self.provider),
            precision_settings={
                **torch_precision_settings(),
                "dtype": details.get("dtype", "float32"),
                "jit_graph_executor_optimize": torch._C._get_graph_executor_optimize(),
                "jit_texpr_fuser_enabled": torch._C._jit_texpr_fuser_enabled(),
                "jit_can_fuse_on_cpu": torch._C._jit_can_fuse_on_cpu(),
                "jit_can_fuse_on_gpu": torch._C._jit_can_fuse_on_gpu(),
            },
            details={
                "kv_cache": True,
                "file": TORCHSCRIPT_FILE,
                "format": TORCHSCRIPT_FORMAT,
                "cache_tensors": details.get("cache_tensors"),
                "kv_heads": details.get("kv_heads"),
                "warmup": asdict(self.warmup),
            },
        )
