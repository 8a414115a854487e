"""TorchScript's export: a traced prefill and KV-cache decode step, verified, per device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving_energy.engines.base import torch_device_for
from serving_energy.engines.export import ExportInfo, architecture_of, atomic_export
from serving_energy.engines.torchscript_engine.engine import TORCHSCRIPT_FILE, TORCHSCRIPT_FORMAT
from serving_energy.study.vocabulary import PROVIDERS


def export_torchscript(model_dir: Path, out_dir: Path, provider: str) -> ExportInfo:
    """A traced KV-cache module (``model_kv.pt``: prefill and decode step, see ``kv_trace``) on
    ``provider``'s device; traced per device because a trace bakes in device placements.

    The saved trace is verified against the eager model at prompt and cache lengths it was not
    traced with; an architecture whose trace does not generalise fails its export with the reason
    (there is no fallback to a cache-less module).
    """
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")

    def write(tmp_dir: Path) -> dict[str, Any]:
        import torch
        from transformers import AutoModelForCausalLM

        from serving_energy.engines.torchscript_engine.kv_trace import (
            TRACE_EXAMPLE_TOKENS,
            describe_cache,
            trace_kv_module,
            verify_kv_module,
        )

        device = torch_device_for(provider)
        architecture = architecture_of(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        model.to(device).eval()
        traced = trace_kv_module(model, architecture, device)
        torch.jit.save(traced, str(tmp_dir / TORCHSCRIPT_FILE))
        # Verify what the engine will load, not the in-memory trace.
        saved = torch.jit.load(str(tmp_dir / TORCHSCRIPT_FILE), map_location=device)
        verification = verify_kv_module(saved, model, architecture, device)
        model.config.save_pretrained(tmp_dir)
        model.generation_config.save_pretrained(tmp_dir)
        return {
            "file": TORCHSCRIPT_FILE,
            "format": TORCHSCRIPT_FORMAT,
            "kv_cache": True,
            "methods": ["forward (prefill)", "decode"],
            "device": str(device),
            "dtype": "float32",
            "trace_example_tokens": TRACE_EXAMPLE_TOKENS,
            "verified_prompt_tokens": list(verification.prompt_tokens),
            "verified_decode_steps": verification.decode_steps,
            "verified_max_abs_logit_diff": verification.max_abs_logit_diff,
            "verified_noise_floor_logit_diff": verification.noise_floor_logit_diff,
            **describe_cache(verification),
        }

    return atomic_export("torchscript", model_dir, out_dir, provider, write)
