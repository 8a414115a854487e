"""The prompt file of a study: sampled from HumanEval by the paper's method, or the paper's own."""

from __future__ import annotations

from pathlib import Path

from serving_energy.data.dataset import (
    Prompt,
    PromptSampling,
    limit_prompts,
    paper_prompts,
    read_problems,
    sample_prompts,
    write_prompts,
)
from serving_energy.data.tokenizer import load_tokenizer


def make_prompts(
    *,
    source: str,
    humaneval_path: Path,
    tokenizer_dir: Path,
    paper_prompts_path: Path | None,
    seed: int,
    min_tokens: int,
    max_tokens: int,
    limit: int | None,
    out_path: Path,
    manifest_path: Path | None = None,
    humaneval_sha256: str | None = None,
) -> list[Prompt]:
    tokenizer = load_tokenizer(tokenizer_dir)

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=True)["input_ids"]

    def decode(ids) -> str:
        return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    problems = read_problems(humaneval_path, humaneval_sha256)
    if source == "sample":
        prompts = sample_prompts(
            problems, encode, decode, PromptSampling(seed, min_tokens, max_tokens)
        )
    elif source == "paper":
        if paper_prompts_path is None:
            raise ValueError("prompts.source is 'paper' but no paper prompt file was given")
        prompts = paper_prompts(Path(paper_prompts_path).read_bytes(), problems, encode)
    else:
        raise ValueError(f"prompts.source must be 'sample' or 'paper', not {source!r}")
    prompts = limit_prompts(prompts, limit)
    write_prompts(prompts, out_path, manifest_path)
    return prompts
