"""A bad config stops the workflow before any job runs, with a message naming the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.helpers import load_config, run_snakemake, write_config

SMOKE = load_config("smoke.yaml")


def dry_run(tmp_path, config: dict, *extra: str):
    configfile = write_config(tmp_path / "study.yaml", config)
    return run_snakemake(
        "-n", "--cores", "1", "--configfile", str(configfile), "--directory", str(tmp_path),
        "--snakefile", "Snakefile", *extra,
    )  # fmt: skip


def mutated(change) -> dict:
    config = copy.deepcopy(SMOKE)
    change(config)
    return config


def test_smoke_config_plans(tmp_path):
    result = dry_run(tmp_path, SMOKE)
    assert result.returncode == 0, result.stderr
    assert "measure" in result.stdout


BAD_CONFIGS = {
    "unknown engine": (
        lambda c: c["configurations"].append({"engine": "tensorrt", "provider": "cpu"}),
        ["tensorrt", "engine"],
    ),
    "unknown provider": (
        lambda c: c["configurations"].append({"engine": "onnx", "provider": "rocm"}),
        ["rocm", "provider"],
    ),
    "OV on CUDA": (
        lambda c: c["configurations"].append({"engine": "openvino", "provider": "cuda"}),
        [
            "<OV, CUDA>",
            "OpenVINO has no CUDA execution provider",
            f"configurations[{len(SMOKE['configurations'])}]",  # the one appended
        ],
    ),
    "no repetitions": (
        lambda c: c.update(repetitions=0),
        ["repetitions: 0 is below the minimum 1"],
    ),
    "typo'd top-level key": (
        lambda c: c.update(repetitons=3),
        ["repetitons: unknown key; did you mean 'repetitions'?"],
    ),
    "typo'd nested key": (
        lambda c: c["protocol"].update(idle_befor_s=5),
        ["protocol.idle_befor_s: unknown key; did you mean 'idle_before_s'?"],
    ),
    "model without an id": (
        lambda c: c["models"].update({"mystery": {"size_category": 1}}),
        ["models.mystery", "has no model id"],
    ),
    "hub model without a revision": (
        lambda c: c["models"].update({"hub": {"hf_id": "org/name", "size_category": 1}}),
        ["models.hub.revision"],
    ),
    "unknown stand-in architecture": (
        lambda c: c["models"]["tiny-gpt2"]["standin"].update(architecture="mamba"),
        ["mamba", "architecture"],
    ),
    "prompt tokenizer not defined": (
        lambda c: c["prompts"].update(tokenizer="codet5-base"),
        ["prompts.tokenizer", "codet5-base"],
    ),
    "unknown target model": (
        lambda c: c.update(targets={"models": ["nope"]}),
        ["targets.models", "nope"],
    ),
    "bad meter setting": (
        lambda c: c["meters"].update(rapl={"enable": True}),
        ["meters.rapl.enable: unknown key; did you mean 'enabled'?"],
    ),
    "wrong type deep inside": (
        lambda c: c["protocol"]["cooldown"].update(min_s="soon"),
        ["protocol.cooldown.min_s: 'soon' is not of type number"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_before_any_job_with_the_key_named(tmp_path, case):
    change, expected = BAD_CONFIGS[case]
    result = dry_run(tmp_path, mutated(change))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in expected:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Job stats" not in output  # nothing was planned, let alone run
    assert not (tmp_path / "results").exists()
    # one line per problem, no dump of the schema or the config
    assert len(output.splitlines()) < 15, output
    assert "description" not in output


OVERRIDES = [
    "generation={max_new_tokens: 400}",
    "analysis={alpha: 0.01}",
    "protocol={cooldown: {adaptive: false}}",
    "targets={repetitions: [2]}",
    "threads=3",
]


@pytest.mark.parametrize("override", OVERRIDES)
def test_command_line_overrides_are_coerced_to_the_schema_types(tmp_path, override):
    """Snakemake passes nested --config values as text; they must validate as typed values."""
    result = dry_run(tmp_path, SMOKE, "--config", override, "--quiet", "rules")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_bad_override_is_named(tmp_path):
    result = dry_run(tmp_path, SMOKE, "--config", "generation={max_new_tokens: lots}")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "generation.max_new_tokens: 'lots' is not of type integer or null" in output


def test_paper_study_resolves_in_full(tmp_path):
    """12 models x 7 configurations x 10 repetitions when CUDA is demanded (e.g. on a cluster)."""
    result = run_snakemake(
        "-n", "--cores", "1", "--config", "cuda={policy: require}", "--quiet", "rules"
    )
    assert result.returncode == 0, result.stderr
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in result.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    assert counts["measure"] == 12 * 7 * 10
    assert counts["fetch_model"] == 12
    assert counts["export"] == 12 * (1 + 1 + 2)  # ONNX, OpenVINO, TorchScript per provider
    assert counts["check_engine"] == 12 * 5


def test_cuda_configurations_left_out_without_gpu_with_a_warning(tmp_path):
    from serving_energy.core.machine import gpu_present

    if gpu_present():
        pytest.skip("this machine has a GPU: CUDA configurations are kept")
    result = run_snakemake("-n", "--cores", "1", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    assert "leaving out <TORCH, CUDA>, <ONNX, CUDA>, <JIT, CUDA>" in result.stdout + result.stderr
    assert "cuda={policy: require}" in result.stdout + result.stderr


def test_use_conda_without_conda_says_both_ways_forward(tmp_path, monkeypatch):
    """The README's main command on a machine without conda: one line with what to do."""
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    # What Snakemake and its plugins may call (the SLURM plugin runs `which sacct` when it is
    # imported, and fails without `which`); conda and mamba are not here.
    for tool in ("bash", "sh", "env", "which"):
        if Path(f"/usr/bin/{tool}").exists():
            (bare_path / tool).symlink_to(f"/usr/bin/{tool}")
    monkeypatch.setenv("PATH", str(bare_path))
    result = dry_run(tmp_path, SMOKE, "--use-conda")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "--use-conda needs conda on PATH and none was found: install Miniforge" in output
    assert "run without --use-conda from the tested venv" in output
    assert "Error running conda info" not in output


def test_the_plan_of_the_papers_study_needs_no_download(tmp_path):
    """`snakemake plan` on config/config.yaml, offline: 840 runs with CUDA demanded, every idle
    window counted (refused on a machine without the disk for the fp32 exports, kept then as
    refused.json)."""
    result = run_snakemake(
        "plan", "--cores", "1", "--directory", str(tmp_path), "--snakefile", "Snakefile",
        "--configfile", "config/config.yaml", "--config", "cuda={policy: require}",
    )  # fmt: skip
    plan_dir = tmp_path / "results" / "plan"
    written = plan_dir / ("plan.json" if result.returncode == 0 else "refused.json")
    plan = json.loads(written.read_text())
    assert plan["runs_total"] == 840
    assert plan["wall"]["runs_idle_s"] == 840 * 600
    assert not (tmp_path / "resources" / "models").exists()  # nothing downloaded
    if result.returncode != 0:
        assert "the study does not fit this machine" in result.stdout + result.stderr
        assert not plan["fits"] and plan["problems"]
