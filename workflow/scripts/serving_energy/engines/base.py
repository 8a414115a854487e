"""The engine interface shared by every runtime: load once, generate greedily, report the device.

Every engine does the same work for a prompt: batch size 1, greedy decoding, exactly
``max_new_tokens`` new tokens (EOS is suppressed until then, as transformers' ``min_new_tokens``
does), so time and energy compare like with like and the token ids can be compared with torch's.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving_energy.core.versions import library_versions
from serving_energy.study.vocabulary import ENGINE_PACKAGES, Configuration


class EngineError(RuntimeError):
    """An engine cannot run as asked (missing provider, device not really used, bad artefact)."""


@dataclass(frozen=True)
class Generation:
    """One greedy generation; ``duration_s`` covers tokenising, decoding and detokenising."""

    prompt_tokens: int
    new_token_ids: tuple[int, ...]
    text: str
    duration_s: float

    @property
    def new_tokens(self) -> int:
        return len(self.new_token_ids)


@dataclass(frozen=True)
class EngineInfo:
    """What actually runs the model: recorded in run metadata and checks."""

    engine: str
    provider: str
    device: str  # e.g. "cpu", "cuda:0": where the computation really happens
    threads: int
    model_dir: str
    artefact_dir: str | None
    ort_providers: tuple[str, ...] | None = None  # ONNX Runtime's active providers, in order
    ov_device: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # The arithmetic really used for matrix products: "f32", "tf32", "bf16", ... (read back from
    # the runtime where it can say), and every setting that decides it (see docs/engines.md).
    compute_precision: str | None = None
    precision_settings: dict[str, Any] = field(default_factory=dict)


def validate_engine_provider(engine: str, provider: str) -> None:
    """A ValueError (the vocabulary's ConfigError) for an unknown engine or provider, or for a
    configuration that does not exist (<OV, CUDA>)."""
    Configuration(engine, provider)


def torch_device_for(provider: str) -> str:
    """The torch device of a provider; CUDA must really be there (no silent CPU fallback)."""
    import torch

    if provider == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        raise EngineError("provider 'cuda' asked for, but torch sees no CUDA device")
    return f"cuda:{torch.cuda.current_device()}"


def set_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads so an engine never inherits an accidental value."""
    import torch

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    try:
        # Only settable before the first parallel work of the process; later calls raise.
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def pin_torch_fp32() -> None:
    """Full fp32 matrix products in torch, whatever the process set before.

    torch leaves TF32 off for CUDA matmuls by default but on for cuDNN, and one call to
    ``torch.set_float32_matmul_precision("high")`` anywhere would turn it on for matmuls: the
    study compares engines at one precision, so it is set, not assumed.
    """
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def torch_precision_settings() -> dict[str, Any]:
    """torch's global settings that decide fp32 arithmetic, as they are now."""
    import torch

    settings: dict[str, Any] = {
        "dtype": "float32",
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    mkldnn_matmul = getattr(torch.backends.mkldnn, "matmul", None)
    if mkldnn_matmul is not None and hasattr(mkldnn_matmul, "fp32_precision"):
        # oneDNN may run fp32 matmuls in bf16/tf32 on CPUs that have them when this says so.
        settings["mkldnn_matmul_fp32_precision"] = mkldnn_matmul.fp32_precision
    return settings


def torch_compute_precision(provider: str) -> str:
    import torch

    if provider == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "f32"


def eos_ids_of(tokenizer, generation_config=None) -> tuple[int, ...]:
    """Every end-of-sequence id, so a decode loop can suppress all of them as generate() does."""
    ids: list[int] = []
    value = getattr(generation_config, "eos_token_id", None) if generation_config else None
    for candidate in (value, tokenizer.eos_token_id):
        if candidate is None:
            continue
        ids.extend(candidate if isinstance(candidate, (list, tuple)) else [candidate])
    return tuple(dict.fromkeys(int(i) for i in ids))


def greedy_generation_config(tokenizer, max_new_tokens: int, model_generation_config=None):
    """A complete greedy GenerationConfig: the model's own sampling defaults must not leak in."""
    from transformers import GenerationConfig

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    eos = eos_ids_of(tokenizer, model_generation_config)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else 0)
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,
        eos_token_id=list(eos) or None,
        pad_token_id=pad,
        bos_token_id=tokenizer.bos_token_id,
        use_cache=True,
    )


class Engine(ABC):
    """A model loaded once in one runtime on one provider."""

    name: str = "?"

    def __init__(self, provider: str, tokenizer, threads: int, model_dir: Path, artefact_dir):
        self.provider = provider
        self.tokenizer = tokenizer
        self.threads = threads
        self.model_dir = Path(model_dir)
        self.artefact_dir = Path(artefact_dir) if artefact_dir is not None else None

    def encode(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt)["input_ids"])

    def prompt_token_count(self, prompt: str) -> int:
        return len(self.encode(prompt))

    def generate(self, prompt: str, max_new_tokens: int) -> Generation:
        start = time.perf_counter()
        input_ids = self.encode(prompt)
        if not input_ids:
            raise ValueError("empty prompt: nothing to condition the generation on")
        new_ids = self.generate_ids(input_ids, max_new_tokens)
        return self._generation(input_ids, new_ids, max_new_tokens, start)

    def _generation(
        self, input_ids: Sequence[int], new_ids: Sequence[int], max_new_tokens: int, start: float
    ) -> Generation:
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        duration_s = time.perf_counter() - start
        if len(new_ids) != max_new_tokens:
            raise EngineError(
                f"{self.name} generated {len(new_ids)} tokens instead of {max_new_tokens}"
            )
        return Generation(len(input_ids), tuple(int(i) for i in new_ids), text, duration_s)

    def prepare_for(self, total_tokens: int) -> None:
        """Get ready, at load, for requests of about ``total_tokens`` (prompt and new tokens):
        what an engine would otherwise do in the first such request (torch.compile compiles its
        decode step for that cache length). Most engines need nothing."""
        return

    @abstractmethod
    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Greedy ids of exactly ``max_new_tokens`` new tokens after ``input_ids``."""

    def sequence_logits(self, token_ids: Sequence[int]):
        """Next-token logits at every position of ``token_ids`` (numpy [len, vocab], float32).

        One forward pass without cache. Engines that cannot give them cheaply return None and say
        why in ``logits_unavailable_reason``.
        """
        return

    logits_unavailable_reason: str | None = "this engine does not expose logits"

    @abstractmethod
    def info(self) -> EngineInfo:
        """The engine, provider and device really in use."""

    def _info(self, device: str, **kwargs) -> EngineInfo:
        kwargs.setdefault("precision_settings", {})
        kwargs["precision_settings"] = {"threads": self.threads, **kwargs["precision_settings"]}
        return EngineInfo(
            engine=self.name,
            provider=self.provider,
            device=device,
            threads=self.threads,
            model_dir=str(self.model_dir),
            artefact_dir=str(self.artefact_dir) if self.artefact_dir else None,
            library_versions=library_versions(ENGINE_PACKAGES),
            **kwargs,
        )


class GenerateApiEngine(Engine):
    """An engine driven by transformers' ``generate()``: torch, and ONNX Runtime and OpenVINO
    through optimum. One greedy path for all three, so they cannot drift apart."""

    model: Any
    input_device: str = "cpu"  # where the input tensors must live for the runtime

    def _input(self, token_ids: Sequence[int]):
        import torch

        ids = torch.tensor([list(token_ids)], dtype=torch.long, device=self.input_device)
        return ids, torch.ones_like(ids)

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
        self._check_output(out)
        return out[0, ids.shape[1] :].tolist()

    def _check_output(self, out) -> None:
        """Where a runtime can tell, verify that the generation really ran on its device."""
