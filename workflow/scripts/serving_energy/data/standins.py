"""Offline stand-in models: random weights at a chosen architecture and geometry.

A stand-in costs the same compute as a real model of the same geometry, so the whole measurement
protocol can run without downloads; at tiny geometry it makes tests and CI fast. Every stand-in
directory carries ``standin.json`` with ``"standin": true`` so results made from it say so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .tokenizers_offline import build_tokenizer

ARCHITECTURES = ("gpt2", "gpt_bigcode", "gpt_neox", "bloom", "llama", "gemma", "phi")
STANDIN_FILE = "standin.json"
# The default init (0.02) gives near-ties between the top two logits of a random model, so float
# rounding differences between engines could flip an argmax; 0.2 widens the gap (FACTS.md).
INITIALIZER_RANGE = 0.2
MAX_POSITIONS = 2048


@dataclass(frozen=True)
class StandinInfo:
    """What ``standin.json`` records about a stand-in model."""

    architecture: str
    n_layers: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    n_parameters: int
    seed: int
    tokenizer: str
    extra: dict[str, Any] = field(default_factory=dict)
    standin: bool = True

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def _config(
    architecture: str,
    *,
    n_layers: int,
    hidden_size: int,
    n_heads: int,
    vocab_size: int,
    special_ids: dict[str, int],
    extra: dict[str, Any],
):
    """A transformers config for ``architecture``; ``extra`` overrides any field."""
    import transformers as tf

    if hidden_size % n_heads:
        raise ValueError(f"hidden_size {hidden_size} is not a multiple of n_heads {n_heads}")
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown stand-in architecture {architecture!r}; expected one of {ARCHITECTURES}"
        )
    # GPT-2-family configs name their geometry n_layer/n_embd/n_head, the others num_*.
    gpt_style = {"n_layer": n_layers, "n_head": n_heads}
    llama_style = {
        "num_hidden_layers": n_layers,
        "hidden_size": hidden_size,
        "num_attention_heads": n_heads,
        "max_position_embeddings": MAX_POSITIONS,
    }
    per_architecture = {
        "gpt2": (tf.GPT2Config, {**gpt_style, "n_embd": hidden_size, "n_positions": 1024}),
        "gpt_bigcode": (
            tf.GPTBigCodeConfig,
            {**gpt_style, "n_embd": hidden_size, "n_positions": MAX_POSITIONS, "multi_query": True},
        ),
        "gpt_neox": (
            tf.GPTNeoXConfig,
            {**llama_style, "intermediate_size": 4 * hidden_size, "rotary_pct": 0.25},
        ),
        "bloom": (tf.BloomConfig, {**gpt_style, "hidden_size": hidden_size}),
        "llama": (
            tf.LlamaConfig,
            {
                **llama_style,
                "num_key_value_heads": min(2, n_heads),
                "intermediate_size": int(2.75 * hidden_size),
            },
        ),
        "gemma": (
            tf.GemmaConfig,
            {
                **llama_style,
                "num_key_value_heads": 1,
                "head_dim": hidden_size // n_heads,
                "intermediate_size": 8 * hidden_size,
            },
        ),
        "phi": (
            tf.PhiConfig,
            {**llama_style, "intermediate_size": 4 * hidden_size, "partial_rotary_factor": 0.5},
        ),
    }
    cls, kwargs = per_architecture[architecture]
    common = {"vocab_size": vocab_size, "initializer_range": INITIALIZER_RANGE, **special_ids}
    return cls(**{**kwargs, **common, **extra})


def n_kv_heads_of(config) -> int:
    if getattr(config, "multi_query", False):
        return 1
    for name in ("num_key_value_heads", "num_attention_heads", "n_head"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"cannot tell the number of KV heads of {type(config).__name__}")


def build_standin(
    architecture: str,
    out_dir: Path,
    *,
    n_layers: int,
    hidden_size: int,
    n_heads: int,
    vocab_size: int | None = None,
    tokenizer: str = "gpt2",
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    humaneval_path: Path | None = None,
) -> StandinInfo:
    """Build a random-weight ``architecture`` model and its offline tokenizer into ``out_dir``.

    ``vocab_size`` is the tokenizer's size for ``bpe-humaneval`` (default 4096) and must be 50257
    or None for ``gpt2``; the model's vocabulary equals the tokenizer's. The same arguments and seed
    give the same weights. Writes config, safetensors weights, tokenizer and ``standin.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    out_dir = Path(out_dir)
    extra = dict(extra or {})
    tok = build_tokenizer(tokenizer, vocab_size, humaneval_path)
    special_ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = _config(
        architecture,
        n_layers=n_layers,
        hidden_size=hidden_size,
        n_heads=n_heads,
        vocab_size=len(tok),
        special_ids=special_ids,
        extra=extra,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.generation_config = GenerationConfig(**special_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    info = StandinInfo(
        architecture=architecture,
        n_layers=n_layers,
        hidden_size=hidden_size,
        n_heads=n_heads,
        n_kv_heads=n_kv_heads_of(config),
        vocab_size=len(tok),
        n_parameters=sum(p.numel() for p in model.parameters()),
        seed=seed,
        tokenizer=tokenizer,
        extra=extra,
    )
    info.to_json(out_dir / STANDIN_FILE)
    return info


def read_standin_info(model_dir: Path) -> dict[str, Any] | None:
    """The ``standin.json`` of ``model_dir``, or None for a real (downloaded) model."""
    path = Path(model_dir) / STANDIN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
