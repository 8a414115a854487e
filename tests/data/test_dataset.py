"""HumanEval with a verified checksum, and prompts sampled by the paper's method."""

from __future__ import annotations

import gzip
import json
import socket

import pytest

from serving_energy.data.dataset import (
    HUMANEVAL_PROBLEMS,
    ChecksumError,
    DownloadError,
    InputError,
    PromptSampling,
    expected_prompt_count,
    fetch_verified,
    humaneval_from_package,
    obtain_humaneval,
    paper_prompts,
    read_problems,
    read_prompts,
    sample_prompts,
    verified_prompts,
    write_prompts,
)
from serving_energy.data.tokenizers_offline import offline_gpt2_tokenizer

HUMANEVAL_SHA256 = "1d49078ba3e2b196b9344535bef34a43021f038fad9561d6ee7c53450609a6a2"


@pytest.fixture(scope="module")
def humaneval(tmp_path_factory):
    path = tmp_path_factory.mktemp("humaneval") / "HumanEval.jsonl"
    assert obtain_humaneval("package", "unused", HUMANEVAL_SHA256, path) == HUMANEVAL_PROBLEMS
    return path


@pytest.fixture(scope="module")
def tokenizer():
    return offline_gpt2_tokenizer()


def codecs(tokenizer):
    def encode(text):
        return tokenizer(text, add_special_tokens=True)["input_ids"]

    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    return encode, decode


def test_package_copy_is_the_pinned_humaneval(humaneval):
    problems = read_problems(humaneval)
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0" and problems[-1].task_id == "HumanEval/163"


def test_checksum_mismatch_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "HumanEval.jsonl"
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        obtain_humaneval("package", "unused", "0" * 64, out)
    assert not out.exists()


def test_offline_download_fails_clearly(tmp_path):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="offline.*'package'"):
        obtain_humaneval(
            "url", f"http://127.0.0.1:{port}/HumanEval.jsonl.gz", HUMANEVAL_SHA256, tmp_path / "h"
        )


def test_gzipped_and_plain_sources_are_judged_by_the_same_bytes(tmp_path):
    data = gzip.decompress(humaneval_from_package())
    source = tmp_path / "copy.jsonl"
    source.write_bytes(data)
    fetch_verified(str(source), HUMANEVAL_SHA256, tmp_path / "out.jsonl", what="HumanEval")
    assert (tmp_path / "out.jsonl").read_bytes() == data


def test_164_prompts_each_a_10_to_15_token_prefix_of_a_line_of_its_problem(humaneval, tokenizer):
    encode, decode = codecs(tokenizer)
    problems = read_problems(humaneval)
    prompts = sample_prompts(
        problems, encode, decode, PromptSampling(seed=2024, min_tokens=10, max_tokens=15)
    )
    assert [p.task_id for p in prompts] == [p.task_id for p in problems]
    for prompt, problem in zip(prompts, problems, strict=True):
        assert 10 <= prompt.n_tokens <= 15
        assert prompt.n_tokens == len(encode(prompt.prompt))
        assert any(line.startswith(prompt.prompt) for line in problem.prompt.splitlines()), prompt


def test_same_seed_gives_a_byte_identical_file_and_other_seeds_differ(
    humaneval, tokenizer, tmp_path
):
    encode, decode = codecs(tokenizer)
    problems = read_problems(humaneval)

    def file_for(seed, name):
        path = tmp_path / name
        write_prompts(sample_prompts(problems, encode, decode, PromptSampling(seed, 10, 15)), path)
        return path.read_bytes()

    first, again, other = file_for(1, "a.jsonl"), file_for(1, "b.jsonl"), file_for(2, "c.jsonl")
    assert first == again
    assert first != other
    differing = sum(a != b for a, b in zip(first.splitlines(), other.splitlines(), strict=True))
    assert differing > 100  # a different seed changes most prompts, not one
    assert [json.loads(line)["task_id"] for line in first.splitlines()][:2] == [
        "HumanEval/0",
        "HumanEval/1",
    ]


def test_prompt_file_round_trip(tmp_path, humaneval, tokenizer):
    encode, decode = codecs(tokenizer)
    prompts = sample_prompts(
        read_problems(humaneval)[:5], encode, decode, PromptSampling(3, 10, 15)
    )
    write_prompts(prompts, tmp_path / "p.jsonl")
    assert read_prompts(tmp_path / "p.jsonl") == prompts


def test_impossible_length_names_the_problem_and_the_setting(humaneval, tokenizer):
    encode, decode = codecs(tokenizer)
    with pytest.raises(ValueError, match="HumanEval/0: .*prompts.min_tokens"):
        sample_prompts(read_problems(humaneval)[:1], encode, decode, PromptSampling(0, 500, 600))


def paper_file(texts):
    return "".join(
        json.dumps({"task_id": f"RandomTokens/{i}", "new_prompt": text}) + "\n"
        for i, text in enumerate(texts)
    ).encode()


def test_paper_prompts_map_onto_humaneval_ids(humaneval, tokenizer):
    encode, _ = codecs(tokenizer)
    problems = read_problems(humaneval)[:3]
    prompts = paper_prompts(paper_file(["def a(", "    >>> b(1)", "x = 1"]), problems, encode)
    assert [p.task_id for p in prompts] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert prompts[1].prompt == "    >>> b(1)"
    assert prompts[1].n_tokens == len(encode("    >>> b(1)"))


def test_paper_prompts_out_of_order_are_refused(humaneval, tokenizer):
    encode, _ = codecs(tokenizer)
    data = paper_file(["a", "b"]).replace(b"RandomTokens/1", b"RandomTokens/7")
    with pytest.raises(ValueError, match="line 2 has task_id 'RandomTokens/7'"):
        paper_prompts(data, read_problems(humaneval)[:2], encode)


def test_paper_prompt_checksum_is_enforced(tmp_path):
    source = tmp_path / "RandomHumanEval.jsonl"
    source.write_bytes(paper_file(["a"]))
    with pytest.raises(ChecksumError):
        fetch_verified(str(source), "f" * 64, tmp_path / "out", what="the paper's prompt file")
    with pytest.raises(DownloadError, match="no file"):
        fetch_verified(str(tmp_path / "missing"), "f" * 64, tmp_path / "out", what="x")


# -- integrity: every bad input is an error naming the file, the line and what was expected ------
def write_study_prompts(tmp_path, humaneval, tokenizer, n: int = 6):
    encode, decode = codecs(tokenizer)
    prompts = sample_prompts(
        read_problems(humaneval)[:n], encode, decode, PromptSampling(3, 10, 15)
    )
    path, manifest = tmp_path / "prompts.jsonl", tmp_path / "prompts.manifest.json"
    write_prompts(prompts, path, manifest)
    return path, manifest, prompts


def test_verified_prompts_accept_what_sample_prompts_wrote(tmp_path, humaneval, tokenizer):
    path, manifest, prompts = write_study_prompts(tmp_path, humaneval, tokenizer)
    assert verified_prompts(path, manifest, 6) == prompts
    assert json.loads(manifest.read_text())["n_prompts"] == 6


def test_prompts_cut_at_a_line_boundary_are_refused(tmp_path, humaneval, tokenizer):
    path, manifest, _ = write_study_prompts(tmp_path, humaneval, tokenizer)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(InputError, match=r"prompts.jsonl: .*3 prompt lines, 6 expected"):
        verified_prompts(path, manifest, 6)


def test_empty_prompts_are_refused(tmp_path, humaneval, tokenizer):
    path, manifest, _ = write_study_prompts(tmp_path, humaneval, tokenizer)
    path.write_text("")
    with pytest.raises(InputError, match="0 prompt lines, 6 expected"):
        verified_prompts(path, manifest, 6)


def test_a_line_cut_mid_way_names_the_file_and_line(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"task_id": "HumanEval/0", "prompt": "def f", "n_tokens": 3}\n{"task_id": "Hu')
    with pytest.raises(InputError, match=r"prompts.jsonl, line 2: not valid JSON"):
        read_prompts(path)


def test_a_prompts_file_of_another_study_size_is_refused(tmp_path, humaneval, tokenizer):
    path, manifest, _ = write_study_prompts(tmp_path, humaneval, tokenizer, n=4)
    with pytest.raises(InputError, match="holds 4 prompts, this study sends 6"):
        verified_prompts(path, manifest, 6)
    assert expected_prompt_count(None) == 164 and expected_prompt_count(6) == 6
    assert expected_prompt_count(500) == 164


def test_an_empty_or_changed_humaneval_is_an_error_naming_it(tmp_path, humaneval):
    empty = tmp_path / "HumanEval.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="HumanEval.jsonl: no problems in it"):
        read_problems(empty)
    with pytest.raises(ChecksumError, match="SHA-256 mismatch"):
        read_problems(empty, HUMANEVAL_SHA256)
    assert len(read_problems(humaneval, HUMANEVAL_SHA256)) == 164
    with pytest.raises(InputError, match="does not exist"):
        read_problems(tmp_path / "missing.jsonl")
