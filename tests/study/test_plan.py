"""The study's plan: disk, memory and wall time from the config, then from what was measured."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from snakemake.utils import validate

from serving_energy.study.config_schema import fill_engine_defaults
from serving_energy.study.layout import ResultsLayout, RunKey
from serving_energy.study.plan import (
    FORECAST,
    MEASURED,
    Figure,
    Machine,
    make_plan,
    model_parameters,
    profile_runtimes_min,
    progress_line,
    study_configurations,
    to_markdown,
)
from tests.helpers import REPO, load_config

GB = 10**9


def study_config(name: str) -> dict:
    config = load_config(name)
    validate(config, str(REPO / "config" / "schema.yaml"))  # the schema's defaults, as Snakemake
    fill_engine_defaults(config)  # and the engines' options', as the Snakefile
    return config


def machine(memory_gb=256, free_disk_gb=10_000, bandwidth_gb_s=30.0, gpu_gb=80) -> Machine:
    return Machine(
        memory_bytes=memory_gb * GB,
        free_disk_bytes=free_disk_gb * GB,
        cpus=2,
        gpu_memory_bytes=gpu_gb * GB if gpu_gb else None,
        read_bandwidth_gb_s={
            "cpu": Figure(bandwidth_gb_s, MEASURED),
            "cuda": Figure(2000.0, MEASURED),
        },
    )


def plan_of(config, tmp_path, **kwargs):
    configurations = study_configurations(config, gpu_here=True)
    parameters = {model: model_parameters(config, model) for model in config["models"]}
    kwargs.setdefault("machine", machine())
    return make_plan(
        config,
        configurations,
        parameters,
        layout=ResultsLayout(tmp_path / "results"),
        benchmarks=tmp_path / "results" / "benchmarks",
        **kwargs,
    )


def test_the_papers_study_counts_every_run_idle_window_and_export(tmp_path):
    config = study_config("config.yaml")
    plan = plan_of(config, tmp_path, measured=False)
    record = plan.to_dict()
    assert record["runs_total"] == 840 == 12 * 7 * 10
    # 840 runs with 300 s of idle before and after each.
    assert record["wall"]["runs_idle_s"] == pytest.approx(840 * 600)
    assert record["wall"]["total_s"] > 840 * 600 + record["wall"]["runs_inference_s"]
    # Every export of every model: ONNX, OpenVINO, TorchScript on the CPU and on CUDA, fp32.
    published = sum(config["models"][m]["parameters"] for m in config["models"])
    assert record["disk"]["exports_disk_bytes"] == pytest.approx(4 * 4 * published)
    assert record["disk"]["snapshots_disk_bytes"] == pytest.approx(4 * published)
    assert all(line["run_wall_s"]["source"] == FORECAST for line in record["run_lines"])
    assert record["fits"], record["problems"]


def test_a_study_larger_than_the_disk_is_refused_with_what_would_make_it_fit(tmp_path):
    config = study_config("config.yaml")
    plan = plan_of(config, tmp_path, measured=False, machine=machine(free_disk_gb=80))
    (problem,) = plan.problems
    assert problem.startswith("disk: the study needs ") and "80.0 GB are free" in problem
    assert any("remove_after_use: true" in remedy for remedy in plan.remedies)
    # With one model's exports at a time, the peak is every snapshot plus the largest model's.
    config["export"]["remove_after_use"] = True
    smaller = plan_of(config, tmp_path, measured=False).disk_bytes()
    assert smaller["peak_disk_bytes"] < plan.disk_bytes()["peak_disk_bytes"] / 2
    assert "does not fit" in to_markdown(plan)


def test_a_job_larger_than_the_memory_is_refused_naming_the_model(tmp_path):
    config = study_config("paper-geometry.yaml")
    plan = plan_of(config, tmp_path, measured=False, machine=machine(memory_gb=16))
    memory = [p for p in plan.problems if p.startswith("memory:")]
    assert len(memory) == 1
    # phi-2 (2.78 B) is the largest; its exports and checks hold two copies of it: ~23 GB.
    assert re.match(r"memory: phi-2's (export|check)_\w+ needs 2[2-4]\.\d GB", memory[0])
    assert "this machine has 16.0 GB" in memory[0]
    gpu = plan_of(config, tmp_path, measured=False, machine=machine(gpu_gb=8)).problems
    assert any(p.startswith("GPU memory: phi-2 needs") for p in gpu)


def write_run(layout: ResultsLayout, key: RunKey, wall_s: float, tokens_per_s: float, fraction):
    path = layout.run_record(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime(2026, 12, 6, 12, 0, 0)
    path.write_text(
        json.dumps(
            {
                "failure": None,
                "started_at": start.isoformat(),
                "finished_at": (start + timedelta(seconds=wall_s)).isoformat(),
                "roofline": {"tokens_per_s": tokens_per_s, "roofline_fraction": fraction},
            }
        )
    )


def test_measured_runs_replace_the_forecast_and_shorten_what_is_left(tmp_path):
    config = study_config("smoke.yaml")
    layout = ResultsLayout(tmp_path / "results")
    before = plan_of(config, tmp_path)
    onnx = next(c for c in study_configurations(config, True) if c.id == "onnx-cpu")
    write_run(layout, RunKey("tiny-gpt2", onnx, 1), wall_s=12.0, tokens_per_s=500.0, fraction=0.9)
    after = plan_of(config, tmp_path)
    lines = {(line.model, line.configuration): line for line in after.runs}
    measured = lines[("tiny-gpt2", "onnx-cpu")]
    assert (measured.done, measured.run_wall_s) == (1, Figure(12.0, MEASURED))
    assert measured.tokens_per_s == Figure(500.0, MEASURED)
    assert measured.left_wall_s == 12.0  # its second repetition, at the measured wall time
    # Another model in the same configuration takes the measured roofline fraction.
    assert lines[("tiny-llama", "onnx-cpu")].tokens_per_s.source == MEASURED
    assert lines[("tiny-llama", "torch-cpu")].tokens_per_s.source == FORECAST
    assert after.n_done == 1 and after.wall_s()["left_s"] < before.wall_s()["left_s"]
    line = progress_line(after)
    assert line.startswith(f"study: 1 of {after.n_runs} runs done, {after.n_runs - 1} left, about ")


def test_a_failed_or_unreadable_run_is_still_to_do(tmp_path):
    config = study_config("smoke.yaml")
    layout = ResultsLayout(tmp_path / "results")
    torch = next(c for c in study_configurations(config, True) if c.id == "torch-cpu")
    write_run(layout, RunKey("tiny-gpt2", torch, 1), 10.0, 100.0, 0.5)
    record = json.loads(layout.run_record(RunKey("tiny-gpt2", torch, 1)).read_text())
    layout.run_record(RunKey("tiny-gpt2", torch, 1)).write_text(
        json.dumps({**record, "failure": "server died"})
    )
    layout.run_record(RunKey("tiny-gpt2", torch, 2)).parent.mkdir(parents=True)
    layout.run_record(RunKey("tiny-gpt2", torch, 2)).write_text("{not json")
    assert plan_of(config, tmp_path).n_done == 0


def test_a_finished_jobs_benchmark_file_replaces_the_stage_forecast(tmp_path):
    config = study_config("smoke.yaml")
    benchmark = tmp_path / "results" / "benchmarks" / "export" / "tiny-gpt2" / "onnx.tsv"
    benchmark.parent.mkdir(parents=True)
    benchmark.write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t800.1\n")
    model = next(m for m in plan_of(config, tmp_path).models if m.model == "tiny-gpt2")
    assert model.stage_wall_s["export_onnx"] == Figure(12.5, MEASURED)
    assert model.stage_wall_s["export_openvino"].source == FORECAST
    unmeasured = plan_of(config, tmp_path, measured=False).models[0]
    assert unmeasured.stage_wall_s["export_onnx"].source == FORECAST


def test_the_cluster_profile_runtimes_are_checked_against_the_longest_jobs(tmp_path):
    runtimes = profile_runtimes_min(REPO / "profiles" / "slurm" / "config.yaml")
    assert runtimes["measure"] == 240 and runtimes["default"] == 60
    assert runtimes["export"] == 120
    config = study_config("paper-geometry.yaml")
    slow = plan_of(
        config, tmp_path, measured=False, machine=machine(bandwidth_gb_s=1.0),
        cluster_runtimes_min=runtimes,
    )  # fmt: skip
    rows = {row["rule"]: row for row in slow.cluster}
    # 164 prompts x 113 tokens of a 2.8 B model at 0.4 GB/s effective do not fit 4 hours.
    assert rows["measure"]["covered"] is False
    assert rows["measure"]["requested_runtime_s"] == 240 * 60
    assert rows["build_standin"]["covered"] is True
    assert "**no**" in to_markdown(slow)
    assert profile_runtimes_min(tmp_path / "missing.yaml") == {}


def test_a_hub_model_without_a_parameter_count_is_named(tmp_path):
    config = study_config("config.yaml")
    del config["models"]["phi-2"]["parameters"]
    assert model_parameters(config, "phi-2") == (None, "config")
    plan = plan_of(config, tmp_path, measured=False)
    assert any("models.phi-2: no parameter count" in p for p in plan.problems)


def test_openvino_bf16_reads_half_the_bytes(tmp_path):
    config = study_config("paper-geometry.yaml")
    f32 = {(r.model, r.configuration): r for r in plan_of(config, tmp_path, measured=False).runs}
    config["engines"]["openvino"]["inference_precision"] = "bf16"
    bf16 = {(r.model, r.configuration): r for r in plan_of(config, tmp_path, measured=False).runs}
    key = ("phi-2", "openvino-cpu")
    assert bf16[key].tokens_per_s.value == pytest.approx(2 * f32[key].tokens_per_s.value)
    assert bf16[("phi-2", "onnx-cpu")] == f32[("phi-2", "onnx-cpu")]


@pytest.fixture(autouse=True)
def _work_in(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the plan looks for resources/models/ where the study runs
    Path("results").mkdir()
