"""Trace a causal LM into one TorchScript module with an explicit KV cache.

The module has two traced methods that share one copy of the weights:

- ``forward(input_ids Long[1, n], logit_positions Long[k])`` -- the prefill: runs the prompt from an
  empty cache and returns ``(logits Float[1, k, vocab], k_0, v_0, ..., k_{L-1}, v_{L-1})``, the
  logits at the ``k`` requested positions and the cache of every layer.
- ``decode(input_ids Long[1, 1], cache: List[Tensor])`` -- one decoding step: appends one position
  to the flattened cache and returns ``(logits Float[1, 1, vocab], *cache')``.

The cache is the model's own ``DynamicCache`` flattened layer by layer into (key, value) tensors,
in the layout the architecture keeps (``[1, kv_heads, length, head_dim]``; 1 KV head for
gpt_bigcode's multi-query attention). Each new token therefore costs one step over the cache, as in
the other engines, instead of re-running the whole sequence.

A trace records one execution; shapes read from tensors stay symbolic, Python values become
constants. So every export is verified against the eager model at prompt and cache lengths other
than the trace example's, and refused (``TraceError``) when it does not generalise.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from serving_energy.engines.tolerance import logit_scale, trace_tolerance

# Long enough that the traced graph holds no length-1 special cases; short enough to trace quickly.
TRACE_EXAMPLE_TOKENS = 8
# Prompt lengths the export is verified at: none equals the trace example's, one is a single token.
VERIFY_PROMPT_TOKENS = (1, 5, 17)
VERIFY_DECODE_STEPS = 3


class TraceError(RuntimeError):
    """The model cannot be traced into a KV-cache step that reproduces its eager forward pass."""


@dataclass(frozen=True)
class TraceVerification:
    """How closely the saved trace reproduced the eager model at lengths it was not traced with."""

    prompt_tokens: tuple[int, ...]
    decode_steps: int
    max_abs_logit_diff: float
    cache_shapes: tuple[tuple[int, ...], ...]  # one prompt's (key, value) shapes, layer by layer
    # The eager model against itself with the prompt batched twice (other GEMM kernels, another
    # accumulation order): the fp32 noise of this model, which the tolerance allows a multiple of.
    noise_floor_logit_diff: float = 0.0


@contextlib.contextmanager
def traceable_transformers() -> Iterator[None]:
    """Swap the pieces of transformers 4.57 that ``torch.jit.trace`` cannot record, then restore.

    - The vmap-based mask builders (``masking_utils.sdpa_mask_recent_torch``) fail with
      ``RuntimeError: unordered_map::at``; optimum's ONNX exporter registers loop-free ones.
    - ``find_packed_sequence_indices`` uses ``torch.diff`` on Python values.
    - ``DynamicLayer.update`` concatenates onto an empty tensor on first use; optimum's version
      assigns instead, so seeding a cache with the previous step's tensors costs no copy.

    Only these are swapped: optimum's other ONNX workarounds (e.g. its own rms_norm) would change
    the arithmetic, which a TorchScript engine must not.
    """
    from optimum.exporters.onnx.model_patcher import (
        eager_mask_without_vmap,
        find_packed_sequence_indices_patched,
        patched_dynamic_layer_update,
        sdpa_mask_without_vmap,
    )
    from transformers import masking_utils
    from transformers.cache_utils import DynamicLayer

    registry = masking_utils.ALL_MASK_ATTENTION_FUNCTIONS
    saved = {name: registry[name] for name in ("sdpa", "eager")}
    saved_find = masking_utils.find_packed_sequence_indices
    saved_update = DynamicLayer.update
    registry.register("sdpa", sdpa_mask_without_vmap)
    registry.register("eager", eager_mask_without_vmap)
    masking_utils.find_packed_sequence_indices = find_packed_sequence_indices_patched
    DynamicLayer.update = patched_dynamic_layer_update
    try:
        yield
    finally:
        for name, function in saved.items():
            registry.register(name, function)
        masking_utils.find_packed_sequence_indices = saved_find
        DynamicLayer.update = saved_update


def flatten_cache(cache, architecture: str) -> list:
    """The (key, value) tensors of every layer of a ``DynamicCache``, in layer order."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    if not isinstance(cache, DynamicCache):
        raise TraceError(
            f"{architecture} returns a {type(cache).__name__} cache; the decode step needs a "
            "DynamicCache it can flatten into tensors"
        )
    flat = []
    for index, layer in enumerate(cache.layers):
        # A sliding-window layer keeps only its window: flattening it would grow without bound.
        if type(layer) is not DynamicLayer:
            raise TraceError(
                f"{architecture} layer {index} keeps a {type(layer).__name__}; only full-attention "
                "DynamicLayer caches can be traced into a decode step"
            )
        flat += [layer.keys, layer.values]
    return flat


def cache_from(flat: list):
    """A ``DynamicCache`` seeded with the previous step's tensors (no copy inside the trace)."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    for index in range(len(flat) // 2):
        cache.update(flat[2 * index], flat[2 * index + 1], index)
    return cache


def _kv_module(model, architecture: str):
    import torch

    keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    class KVCacheLM(torch.nn.Module):
        """prefill (``forward``) and ``decode`` over an explicit, flattened KV cache."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def _run(self, input_ids, cache, logit_positions):
            if keeps_logits:
                out = self.inner(
                    input_ids=input_ids,
                    past_key_values=cache,
                    use_cache=True,
                    return_dict=True,
                    logits_to_keep=logit_positions,
                )
                return out.logits, out.past_key_values
            # e.g. bloom: no logits_to_keep, so project only the wanted positions ourselves
            # (the verification below checks that this equals the model's own logits).
            out = self.inner.base_model(
                input_ids=input_ids, past_key_values=cache, use_cache=True, return_dict=True
            )
            hidden = out.last_hidden_state
            if isinstance(logit_positions, int):
                hidden = hidden[:, -logit_positions:, :]
            else:
                hidden = hidden[:, logit_positions, :]
            return self.inner.get_output_embeddings()(hidden), out.past_key_values

        def forward(self, input_ids, logit_positions):
            logits, cache = self._run(input_ids, cache_from([]), logit_positions)
            return (logits, *flatten_cache(cache, architecture))

        def decode(self, input_ids, cache: list[torch.Tensor]):
            logits, cache = self._run(input_ids, cache_from(cache), 1)
            return (logits, *flatten_cache(cache, architecture))

    return KVCacheLM(model)


def trace_kv_module(model, architecture: str, device):
    """Trace ``model`` (eval, on ``device``) into a ScriptModule with ``forward`` and ``decode``."""
    import torch

    wrapper = _kv_module(model, architecture).eval()
    example = (
        torch.arange(TRACE_EXAMPLE_TOKENS, device=device).unsqueeze(0) + 2
    ) % model.config.vocab_size
    last = torch.tensor([TRACE_EXAMPLE_TOKENS - 1], device=device)
    with traceable_transformers(), torch.inference_mode(False), torch.no_grad():
        prefill_out = wrapper(example, last)
        cache = list(prefill_out[1:])
        if not cache:
            raise TraceError(f"{architecture} returned no KV cache from its prefill")
        step = example[:, -1:]
        return torch.jit.trace_module(
            wrapper,
            {"forward": (example, last), "decode": (step, cache)},
            check_trace=False,
            strict=False,
        )


def _eager_logits(model, input_ids, cache):
    """The eager model's logits at every position and its updated cache (the reference)."""
    out = model(input_ids=input_ids, past_key_values=cache, use_cache=True, return_dict=True)
    return out.logits, out.past_key_values


def verify_kv_module(module, model, architecture: str, device) -> TraceVerification:
    """Compare the traced module with the eager model at lengths it was not traced with.

    For each prompt length: all prefill logits, then ``VERIFY_DECODE_STEPS`` greedy decode steps fed
    the traced module's own cache. Alongside, the eager model decodes the same prompt batched twice:
    its difference from the unbatched eager logits is this model's fp32 noise (another kernel and
    accumulation order, same arithmetic). Raises ``TraceError`` when any logit differs by more
    than ``tolerance.trace_tolerance`` (of the logits' scale, or that multiple of the noise measured
    so far) or a cache shape differs from the eager model's.
    """
    import torch
    from transformers.cache_utils import DynamicCache

    worst, noise = 0.0, 0.0
    shapes: tuple[tuple[int, ...], ...] = ()
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for n_tokens in VERIFY_PROMPT_TOKENS:
            ids = torch.randint(2, model.config.vocab_size, (1, n_tokens), generator=generator)
            ids = ids.to(device)
            want, eager_cache = _eager_logits(model, ids, DynamicCache())
            batched, batched_cache = _eager_logits(model, ids.repeat(2, 1), DynamicCache())
            noise = max(noise, _max_diff(batched[:1], want))
            where = f"prefill of {n_tokens} tokens"
            out = _run_traced(
                architecture, where, module, ids, torch.arange(n_tokens, device=device)
            )
            got, cache = out[0], list(out[1:])
            worst = max(worst, _compare(got, want, architecture, where, noise))
            eager_shapes = tuple(tuple(t.shape) for t in flatten_cache(eager_cache, architecture))
            traced_shapes = tuple(tuple(t.shape) for t in cache)
            if traced_shapes != eager_shapes:
                raise TraceError(
                    f"{architecture}: traced cache shapes {traced_shapes[:2]}... differ from the "
                    f"eager model's {eager_shapes[:2]}... after a {n_tokens}-token prefill"
                )
            shapes = shapes or traced_shapes
            next_id = want[:, -1:, :].argmax(-1)
            for step in range(VERIFY_DECODE_STEPS):
                want, eager_cache = _eager_logits(model, next_id, eager_cache)
                batched, batched_cache = _eager_logits(model, next_id.repeat(2, 1), batched_cache)
                noise = max(noise, _max_diff(batched[:1], want))
                where = f"decode step {step + 1} after a {n_tokens}-token prompt"
                out = _run_traced(architecture, where, module.decode, next_id, cache)
                got, cache = out[0], list(out[1:])
                worst = max(worst, _compare(got, want, architecture, where, noise))
                next_id = want[:, -1:, :].argmax(-1)
    return TraceVerification(
        prompt_tokens=VERIFY_PROMPT_TOKENS,
        decode_steps=VERIFY_DECODE_STEPS,
        max_abs_logit_diff=worst,
        cache_shapes=shapes,
        noise_floor_logit_diff=noise,
    )


def _max_diff(a, b) -> float:
    return float((a.float() - b.float()).abs().max())


def _run_traced(architecture: str, where: str, method, *inputs):
    """Call a traced method; a shape baked into the trace fails here, and says where."""
    try:
        return method(*inputs)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[-1]
        raise TraceError(
            f"{architecture}: the traced module fails at {where} ({reason}): the trace does not "
            "generalise to this length"
        ) from error


def _compare(got, want, architecture: str, where: str, noise: float = 0.0) -> float:
    if tuple(got.shape) != tuple(want.shape):
        raise TraceError(
            f"{architecture}: traced logits have shape {tuple(got.shape)} at {where}, the eager "
            f"model's {tuple(want.shape)}: the trace does not generalise to this length"
        )
    diff = _max_diff(got, want)
    # Judged against the logits' size and this model's own fp32 noise (engines/tolerance.py).
    tolerance = trace_tolerance(logit_scale(want.float().cpu().numpy()), noise)
    if not diff <= tolerance:  # also catches NaN
        raise TraceError(
            f"{architecture}: traced logits differ from the eager model's by {diff:.3g} at "
            f"{where} (tolerance {tolerance:.3g} for logits of this size and an fp32 noise of "
            f"{noise:.3g}): the trace does not generalise to this length"
        )
    return diff


def describe_cache(verification: TraceVerification) -> dict[str, Any]:
    """What export.json records about the cache layout the engine will carry between steps."""
    first_key = verification.cache_shapes[0]
    return {
        "cache_tensors": len(verification.cache_shapes),
        "cache_layout": "per layer: key, value; each [batch, kv_heads, length, head_dim]",
        "kv_heads": first_key[1] if len(first_key) == 4 else None,
        "example_cache_shapes": [list(s) for s in verification.cache_shapes[:2]],
    }
