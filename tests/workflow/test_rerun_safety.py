"""Re-running never loses or silently redoes a measurement (the smoke study, through Snakemake).

Planning checks run ``-n`` on the shared finished study; anything that writes works on a copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import time
from pathlib import Path

import polars as pl
import psutil
import pytest

from tests.helpers import REPO, load_config, planned_jobs
from tests.serving.fakes import wait_until

from .conftest import SMOKE_CONFIG, SMOKE_RUNS, smoke

pytestmark = pytest.mark.e2e

RUN = "results/runs/tiny-gpt2/torch-cpu/rep1"
N_RUNS = SMOKE_RUNS


def snapshot(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def plan(workdir: Path, *args: str) -> tuple[dict[str, int], str]:
    result = smoke(workdir, "-n", *args)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return planned_jobs(output), output


@pytest.mark.parametrize(
    "change",
    [
        ("--config", "targets={configurations: [onnx-cpu]}"),
        ("--config", "analysis={alpha: 0.01}"),
        ("--config", "protocol={run_order: {seed: 99}}"),
        ("--config", "study={description: another description}"),
        ("--cores", "1"),
        ("--config", "protocol={request_timeout_s: 30}"),
        ("--config", "protocol={run_order: {mode: by_model}}"),
        ("--config", "export={remove_after_use: true}"),
    ],
    ids=[
        "targets", "analysis", "run-order", "description", "cores", "timeout", "by-model",
        "remove-exports",
    ],
)  # fmt: skip
def test_changes_that_do_not_change_a_measurement_plan_no_measure_job(study, change):
    jobs, output = plan(study, *change)
    assert "measure" not in jobs, output[-3000:]
    assert not any(job.startswith(("export_", "check_", "build_")) for job in jobs), jobs
    assert "will be measured again" not in output


def test_a_changed_measurement_setting_is_planned_and_announced_first(study):
    jobs, output = plan(study, "--config", "generation={max_new_tokens: 16}")
    assert jobs["measure"] == N_RUNS
    warning = output.index(f"{N_RUNS} of {N_RUNS} existing measured runs will be measured again")
    tokens = load_config("smoke.yaml")["generation"]["max_new_tokens"]
    assert f"generation.max_new_tokens: {tokens} -> 16" in output
    assert "--rerun-triggers" in output and "results/superseded/" in output
    assert warning < output.index("Job stats")  # said before the plan, not buried after it


def test_a_targets_run_adds_to_the_study_and_never_shrinks_it(study_copy):
    result = smoke(
        study_copy,
        "--config",
        "targets={models: [tiny-gpt2], configurations: [openvino-cpu], repetitions: [2]}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout + result.stderr).get("measure") is None
    assert pl.read_csv(study_copy / "results/metrics/runs.csv").height == N_RUNS
    # a missing run of the subset is measured, and the tables still hold the whole study
    shutil.rmtree(study_copy / "results/runs/tiny-gpt2/openvino-cpu/rep2")
    result = smoke(study_copy, "--config", "targets={configurations: [openvino-cpu]}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_jobs(result.stdout + result.stderr)["measure"] == 1
    assert pl.read_csv(study_copy / "results/metrics/runs.csv").height == N_RUNS
    assert_package_consistent(study_copy)


def assert_package_consistent(workdir: Path) -> None:
    results = workdir / "results"
    listed = set()
    for line in (results / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((results / name).read_bytes()).hexdigest() == digest, name
        listed.add(name)
    runs = pl.read_csv(results / "metrics/runs.csv")
    for model, configuration, rep in runs.select("model", "configuration_id", "rep").iter_rows():
        assert f"runs/{model}/{configuration}/rep{rep}/run.json" in listed
    readme = (results / "README.md").read_text()
    assert f"- {runs.height} runs:" in readme


def test_a_deleted_run_is_measured_again_by_the_plain_command(study_copy):
    shutil.rmtree(study_copy / RUN)
    jobs, _ = plan(study_copy)
    assert jobs["measure"] == 1
    result = smoke(study_copy)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (study_copy / RUN / "run.json").is_file()
    assert_package_consistent(study_copy)


def test_a_run_deleted_outside_the_targets_leaves_a_consistent_package(study_copy):
    shutil.rmtree(study_copy / RUN)
    result = smoke(study_copy, "--config", "targets={models: [tiny-llama]}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert pl.read_csv(study_copy / "results/metrics/runs.csv").height == N_RUNS - 1
    assert_package_consistent(study_copy)
    readme = (study_copy / "results/README.md").read_text()
    assert (
        f"incomplete: 1 of {N_RUNS} planned runs are not measured yet**: tiny-gpt2 <TORCH, CPU> "
        "rep 1" in (readme)
    )


def processes_in(workdir: Path, marker: str) -> list[psutil.Process]:
    """Live processes started in ``workdir`` whose command line mentions ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        alive = process.info["status"] != psutil.STATUS_ZOMBIE
        if alive and marker in cmdline and process.info["cwd"] == str(workdir):
            found.append(process)
    return found


def servers_in(workdir: Path) -> list[psutil.Process]:
    return processes_in(workdir, "serving_energy.serving.server")


def start_long_forced_run(start, workdir: Path):
    """A forced re-measurement of RUN with long generations, waited for until mid-inference."""
    log = workdir / "results/logs/measure/tiny-gpt2/torch-cpu/rep1.log"
    log.unlink(missing_ok=True)
    process = start(
        f"{RUN}/run.json", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--cores", "2", "--forcerun", "measure",
        "--config", "generation={max_new_tokens: 1000}", "protocol={idle_after_s: 30}",
        "--configfile", str(SMOKE_CONFIG),
    )  # fmt: skip
    assert wait_until(
        lambda: log.is_file() and "inference window" in log.read_text(), timeout_s=300
    ), process.stdout.read() if process.poll() is not None else "no inference window yet"
    time.sleep(1.0)
    (server,) = servers_in(workdir)
    return process, server


def test_a_measure_job_killed_mid_inference_takes_its_server_and_keeps_the_old_run(
    study_copy, background_snakemake
):
    before = snapshot(study_copy / RUN)
    snakemake, server = start_long_forced_run(background_snakemake, study_copy)
    job = server.parent()
    assert "measure.py" in " ".join(job.cmdline())
    job.send_signal(signal.SIGKILL)
    output, _ = snakemake.communicate(timeout=300)
    assert snakemake.returncode != 0
    assert wait_until(lambda: servers_in(study_copy) == [], timeout_s=10), "the server survived"
    assert snapshot(study_copy / RUN) == before  # the previous run, byte for byte, in its place
    (record,) = (study_copy / "results/failed").glob("*/*/rep*/*/failure.json")
    assert json.loads(record.read_text())["status"] == "unfinished"


def test_killing_snakemake_stops_the_job_which_keeps_its_data_and_the_old_run(
    study_copy, background_snakemake
):
    before = snapshot(study_copy / RUN)
    snakemake, server = start_long_forced_run(background_snakemake, study_copy)
    snakemake.send_signal(signal.SIGKILL)
    snakemake.wait(timeout=30)
    assert wait_until(lambda: servers_in(study_copy) == [], timeout_s=30), "the server survived"
    assert wait_until(lambda: processes_in(study_copy, "measure.py") == [], timeout_s=30), (
        "the measure job survived Snakemake"
    )
    assert snapshot(study_copy / RUN) == before
    (record,) = (study_copy / "results/failed").glob("*/*/rep*/*/failure.json")
    failure = json.loads(record.read_text())
    assert failure["status"] == "failed"
    assert "Snakemake" in failure["failure"] and failure["failure"].startswith("interrupted")
    assert {"requests.parquet", "timeline.parquet", "server.log"} <= {
        p.name for p in record.parent.iterdir()
    }

    # The README's recipe after an interrupted invocation: unlock, then run again. The run is
    # measured anew and the old one moves to results/superseded/, still byte for byte.
    assert smoke(study_copy, "--unlock").returncode == 0
    result = smoke(study_copy, f"{RUN}/run.json")
    assert result.returncode == 0, result.stderr[-3000:]
    (kept,) = (study_copy / "results/superseded/tiny-gpt2/torch-cpu/rep1").iterdir()
    assert {k: v for k, v in snapshot(kept).items() if k != "superseded.json"} == before
