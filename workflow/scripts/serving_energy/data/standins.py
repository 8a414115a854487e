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

from serving_energy.study.geometries import ARCHITECTURES, resolve_geometry  # noqa: F401 (re-exported)

from .tokenizers_offline import build_tokenizer, pad_tokenizer

STANDIN_FILE = "standin.json"
# The default init (0.02) gives near-ties between the top two logits of a random model, so float
# rounding differences between engines could flip an argmax; 0.2 widens the gap (FACTS.md).
INITIALIZER_RANGE = 0.2


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
    geometry: dict[str, Any] = field(default_factory=dict)  # every field, defaults resolved
    tokenizer_vocab_size: int | None = None  # the tokenizer's own tokens, before padding
    standin: bool = True

    def to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def _config(
    architecture: str,
    geometry: dict[str, Any],
    *,
    vocab_size: int,
    special_ids: dict[str, int],
    extra: dict[str, Any],
):
    """A transformers config for ``architecture`` at ``geometry``; ``extra`` overrides any field."""
    import transformers as tf

    g = geometry
    # GPT-2-family configs name their geometry n_layer/n_embd/n_head, the others num_*.
    gpt_style = {"n_layer": g["layers"], "n_head": g["heads"]}
    llama_style = {
        "num_hidden_layers": g["layers"],
        "hidden_size": g["hidden_size"],
        "num_attention_heads": g["heads"],
        "max_position_embeddings": g["max_positions"],
        "intermediate_size": g["intermediate_size"],
    }
    per_architecture = {
        "gpt2": (
            tf.GPT2Config,
            {**gpt_style, "n_embd": g["hidden_size"], "n_positions": g["max_positions"],
             "n_inner": g["intermediate_size"]},
        ),
        "gpt_bigcode": (
            tf.GPTBigCodeConfig,
            {**gpt_style, "n_embd": g["hidden_size"], "n_positions": g["max_positions"],
             "n_inner": g["intermediate_size"], "multi_query": g["kv_heads"] == 1},
        ),
        "gpt_neox": (tf.GPTNeoXConfig, {**llama_style, "rotary_pct": g["rotary_fraction"]}),
        "bloom": (tf.BloomConfig, {**gpt_style, "hidden_size": g["hidden_size"]}),
        "llama": (
            tf.LlamaConfig,
            {**llama_style, "num_key_value_heads": g["kv_heads"], "head_dim": g["head_dim"]},
        ),
        "gemma": (
            tf.GemmaConfig,
            {**llama_style, "num_key_value_heads": g["kv_heads"], "head_dim": g["head_dim"]},
        ),
        "phi": (
            tf.PhiConfig,
            {**llama_style, "num_key_value_heads": g["kv_heads"],
             "partial_rotary_factor": g["rotary_fraction"]},
        ),
    }  # fmt: skip
    cls, kwargs = per_architecture[architecture]
    common = {
        "vocab_size": vocab_size,
        "initializer_range": INITIALIZER_RANGE,
        "tie_word_embeddings": g["tied_embeddings"],
        **special_ids,
    }
    # A config takes any keyword silently; a typo must not become a field nobody reads.
    unknown = sorted(set(extra) - set(cls().to_dict()))
    if unknown:
        raise ValueError(f"{architecture} configs have no field(s) {unknown} (stand-in config)")
    return cls(**{**kwargs, **common, **extra})


def standin_config(
    architecture: str,
    geometry: dict[str, Any],
    *,
    vocab_size: int,
    special_ids: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
):
    """The transformers config a stand-in is built from (also for meta-device parameter counts)."""
    return _config(
        architecture,
        resolve_geometry(architecture, **geometry),
        vocab_size=vocab_size,
        special_ids=dict(special_ids or {}),
        extra=dict(extra or {}),
    )


def count_parameters(config) -> int:
    """Parameters of a model built from ``config``, on PyTorch's meta device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())  # a tied head is one parameter


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
    tokenizer_vocab_size: int | None = None,
    seed: int = 0,
    extra: dict[str, Any] | None = None,
    humaneval_path: Path | None = None,
    **geometry: Any,
) -> StandinInfo:
    """Build a random-weight ``architecture`` model and its offline tokenizer into ``out_dir``.

    ``vocab_size`` is the model's vocabulary (embedding rows and output head); None means the
    tokenizer's. A larger vocabulary than the tokenizer's pads the tokenizer with tokens that no
    text encodes to but that decode, so every id a random model generates decodes.
    ``tokenizer_vocab_size`` is the trained size of a ``bpe-humaneval`` tokenizer (default 4096).
    ``geometry`` takes the other ``GEOMETRY_FIELDS`` (kv_heads, head_dim, intermediate_size,
    max_positions, rotary_fraction, tied_embeddings); ``extra`` any other config field. The same
    arguments and seed give the same weights. Writes config, safetensors weights, tokenizer and
    ``standin.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    out_dir = Path(out_dir)
    extra = dict(extra or {})
    resolved = resolve_geometry(
        architecture,
        layers=n_layers,
        hidden_size=hidden_size,
        heads=n_heads,
        vocab_size=vocab_size,
        **geometry,
    )
    tok = build_tokenizer(tokenizer, tokenizer_vocab_size, humaneval_path)
    model_vocab = vocab_size or len(tok)
    if model_vocab < len(tok):
        raise ValueError(
            f"vocab_size {model_vocab} is smaller than the {tokenizer!r} tokenizer's {len(tok)} "
            "tokens: the model could not embed every id the tokenizer emits"
        )
    trained_tokens = len(tok)
    tok = pad_tokenizer(tok, model_vocab)
    special_ids = {
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    config = _config(
        architecture, resolved, vocab_size=model_vocab, special_ids=special_ids, extra=extra
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.generation_config = GenerationConfig(**special_ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    info = StandinInfo(
        architecture=architecture,
        n_layers=resolved["layers"],
        hidden_size=resolved["hidden_size"],
        n_heads=resolved["heads"],
        n_kv_heads=n_kv_heads_of(config),
        vocab_size=model_vocab,
        n_parameters=sum(p.numel() for p in model.parameters()),
        seed=seed,
        tokenizer=tokenizer,
        extra=extra,
        geometry=dict(resolved),
        tokenizer_vocab_size=trained_tokens,
    )
    info.to_json(out_dir / STANDIN_FILE)
    return info


def read_standin_info(model_dir: Path) -> dict[str, Any] | None:
    """The ``standin.json`` of ``model_dir``, or None for a real (downloaded) model."""
    path = Path(model_dir) / STANDIN_FILE
    return json.loads(path.read_text()) if path.is_file() else None
