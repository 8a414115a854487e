"""Bad inputs stop a run with an error naming the file, and nothing measured before is lost
(the smoke study, through Snakemake, on copies)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .conftest import smoke

pytestmark = pytest.mark.e2e

RUN = "results/runs/tiny-gpt2/onnx-cpu/rep1"


def fingerprint(workdir: Path) -> dict[str, str]:
    runs = workdir / "results" / "runs"
    return {
        path.relative_to(runs).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(runs.rglob("*"))
        if path.is_file()
    }


def forced_run_fails(workdir: Path, *expected: str) -> str:
    before = fingerprint(workdir)
    result = smoke(workdir, f"{RUN}/run.json", "--forcerun", "measure")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for fragment in expected:
        assert fragment in output, f"{fragment!r} not in:\n{output[-4000:]}"
    assert fingerprint(workdir) == before  # every run, byte for byte
    return output


def test_prompts_cut_at_a_line_boundary(study_copy):
    prompts = study_copy / "results/prompts/prompts.jsonl"
    prompts.write_text("".join(prompts.read_text().splitlines(keepends=True)[:3]))
    forced_run_fails(
        study_copy, "results/prompts/prompts.jsonl", "3 prompt lines, 6 expected", "InputError"
    )


def test_an_empty_prompts_file(study_copy):
    (study_copy / "results/prompts/prompts.jsonl").write_text("")
    forced_run_fails(study_copy, "0 prompt lines, 6 expected")


def test_a_prompt_line_cut_mid_way(study_copy):
    prompts = study_copy / "results/prompts/prompts.jsonl"
    prompts.write_text(prompts.read_text()[:-20])
    forced_run_fails(study_copy, "results/prompts/prompts.jsonl", "was changed or cut short")


def test_a_tampered_model_file(study_copy):
    weights = next((study_copy / "resources/models/tiny-gpt2").glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    forced_run_fails(study_copy, "resources/models/tiny-gpt2", "content changed", weights.name)


def test_an_empty_humaneval(study_copy):
    before = fingerprint(study_copy)
    (study_copy / "resources/humaneval/HumanEval.jsonl").write_text("")
    result = smoke(study_copy, "results/prompts/prompts.jsonl", "--forcerun", "sample_prompts")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "HumanEval" in output and "SHA-256 mismatch" in output
    assert fingerprint(study_copy) == before
