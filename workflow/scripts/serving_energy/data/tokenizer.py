"""Loading a tokenizer saved in a folder: the prompts' counter, or the one every model and export
folder carries. Its own module so that serving an engine needs none of the tokenizer sources'
packages (an offline tokenizer's files, the Hub)."""

from __future__ import annotations

from pathlib import Path


def load_tokenizer(folder: Path):
    from serving_energy.core.lean_imports import skip_unused_transformers_imports

    skip_unused_transformers_imports()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))
