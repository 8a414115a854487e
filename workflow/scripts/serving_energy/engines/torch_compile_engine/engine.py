"""torch.compile: transformers' model with its decode step compiled once, over a static KV cache.

The design is transformers' own for compiled generation: ``generate()`` runs the prefill eagerly
(any prompt length, nothing to recompile) and every decode step through ``torch.compile`` of the
model's call, whose shapes a static cache keeps fixed (one token in, a cache of a fixed length).
A new prompt length therefore reuses the compiled graph. The cache's length is the prompt plus
the new tokens rounded up to ``CACHE_BLOCK_TOKENS``, one cache (and one compiled graph) per such
length: a study's prompts fall in one or a few blocks. The server's ``prepare_for`` compiles the
block of the study's request length as part of the load, outside the measured window; a
compilation after that is counted and logged (``info().details``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serving_energy.engines.base import (
    EngineError,
    EngineInfo,
    greedy_generation_config,
)
from serving_energy.engines.torch_compile_engine.spec import TorchCompileOptions
from serving_energy.engines.torch_engine.engine import EagerModelEngine

logger = logging.getLogger(__name__)

# A static cache is attended over its whole length (masked): a block small against the weights'
# bytes per token keeps that cost low, and large enough that a study's prompts need few blocks.
CACHE_BLOCK_TOKENS = 256
# prepare_for's compilation: a one-token prompt and enough new tokens to run the compiled step.
WARMUP_NEW_TOKENS = 3


def cache_length_for(total_tokens: int, block: int = CACHE_BLOCK_TOKENS) -> int:
    """The static cache length that holds ``total_tokens``: the next multiple of ``block``."""
    if total_tokens < 1:
        raise ValueError(f"total_tokens must be >= 1, got {total_tokens}")
    return -(-total_tokens // block) * block


def compiled_graph_count() -> int:
    """Graphs TorchDynamo has compiled in this process (one per compiled cache length)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class _ForcedTokens:
    """A logits processor that makes generate() follow given ids (teacher forcing): the raw
    logits generate() returns are then the compiled decode's at every position of a sequence."""

    def __init__(self, forced: Sequence[int], prompt_length: int):
        self.forced = list(forced)
        self.prompt_length = prompt_length

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.prompt_length
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.forced[step]] = 0.0
        return forced


class TorchCompileEngine(EagerModelEngine):
    name = "torch_compile"

    def __init__(
        self,
        provider: str,
        model_dir: Path,
        artefact_dir: None,
        threads: int,
        options: TorchCompileOptions | None = None,
    ):
        from transformers.generation.configuration_utils import CompileConfig

        self.options = options if options is not None else TorchCompileOptions()
        super().__init__(provider, model_dir, threads)
        # fullgraph: a graph break would leave parts of the step eager without saying so.
        self.compile_config = CompileConfig(fullgraph=True, dynamic=False, mode=self.options.mode)
        # transformers compiles only on CUDA unless told to compile on every device.
        self.compile_config._compile_all_devices = True
        self._caches: dict[int, Any] = {}
        # The cache lengths this engine runs, in the order it first ran them: each one graph,
        # compiled once per process (another engine of the same architecture may have compiled it).
        self.cache_lengths: list[int] = []
        self.compilations_after_load = 0
        self.compile_s = 0.0
        # Set once prepare_for has run (the server's load): a compilation after it is a
        # request's, counted and logged.
        self._prepared = False

    def _compile_for(self, total_tokens: int) -> None:
        """Compile the decode step for the cache block of ``total_tokens`` (a one-token prompt,
        a few new tokens: the cache's length is what the graph depends on)."""
        if cache_length_for(total_tokens) in self.cache_lengths:
            return
        started = time.perf_counter()
        try:
            # id 0 is in every vocabulary
            self._generate([0], WARMUP_NEW_TOKENS, cache_tokens=total_tokens)
        except Exception as error:  # noqa: BLE001 - every failure to compile is this engine's
            raise EngineError(
                f"torch.compile could not compile the decode step of {self.model_dir} "
                f"({self.model.config.model_type}): {type(error).__name__}: {error} "
                "(TorchInductor needs a C++ compiler on PATH for the CPU)"
            ) from error
        self.compile_s += time.perf_counter() - started

    def prepare_for(self, total_tokens: int) -> None:
        self._prepared = False  # still loading: not a request's compilation
        try:
            self._compile_for(total_tokens)
        finally:
            self._prepared = True

    def _cache(self, total_tokens: int):
        from transformers import StaticCache

        length = cache_length_for(total_tokens)
        if length not in self._caches:
            self._caches[length] = StaticCache(config=self.model.config, max_cache_len=length)
        return self._caches[length], length

    def _generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        cache_tokens: int | None = None,
        **kwargs,
    ):
        import torch

        ids, mask = self._input(token_ids)
        config = greedy_generation_config(
            self.tokenizer, max_new_tokens, self.model.generation_config
        )
        config.compile_config = self.compile_config
        cache, length = self._cache(max(cache_tokens or 0, len(token_ids) + max_new_tokens))
        new_length = length not in self.cache_lengths
        graphs = compiled_graph_count()
        with torch.inference_mode():
            cache.reset()
            out = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                past_key_values=cache,
                use_model_defaults=False,
                **kwargs,
            )
        if new_length:
            self.cache_lengths.append(length)
        if compiled_graph_count() != graphs:
            if self._prepared:
                self.compilations_after_load += 1
                logger.warning(
                    "torch.compile compiled the decode step again, for a cache of %d tokens, "
                    "during a request: its time is in that request's",
                    length,
                )
        return out, ids.shape[1]

    def generate_ids(self, input_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        out, prompt_length = self._generate(input_ids, max_new_tokens)
        self._check_output(out)
        return out[0, prompt_length:].tolist()

    def sequence_logits(self, token_ids: Sequence[int]):
        """Next-token logits at every position, from the compiled path: generate() from the first
        token, forced to follow ``token_ids`` (position 0 from the eager prefill, every later one
        from the compiled decode step)."""
        import numpy as np
        from transformers import LogitsProcessorList

        token_ids = list(token_ids)
        if not token_ids:
            raise ValueError("no token ids")
        # One step more than the sequence holds, so the last position's logits are computed too
        # (the extra forced id is never read).
        forced = _ForcedTokens([*token_ids[1:], token_ids[-1]], prompt_length=1)
        out, _ = self._generate(
            token_ids[:1],
            len(token_ids),
            logits_processor=LogitsProcessorList([forced]),
            output_logits=True,
            return_dict_in_generate=True,
        )
        return np.stack([step[0].float().cpu().numpy() for step in out.logits])

    def info(self) -> EngineInfo:
        import torch

        inductor = torch._inductor.config
        return self._torch_info(
            details={
                "compile": {
                    "backend": self.compile_config.backend,
                    "mode": self.compile_config.mode,
                    "fullgraph": self.compile_config.fullgraph,
                    "dynamic": self.compile_config.dynamic,
                    "compiled": "decode step (prefill eager)",
                },
                "inductor": {
                    "fx_graph_cache": inductor.fx_graph_cache,
                    "freezing": inductor.freezing,
                    "max_autotune": inductor.max_autotune,
                    "cpp_wrapper": inductor.cpp_wrapper,
                },
                "kv_cache": "static",
                "cache_block_tokens": CACHE_BLOCK_TOKENS,
                "compile_s": round(self.compile_s, 3),
                "cache_lengths": list(self.cache_lengths),
                "compilations_after_load": self.compilations_after_load,
            },
        )
