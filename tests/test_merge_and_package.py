"""Merging run.json files into one table, listing failed attempts, and the replication package."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from serving_energy.analysis.merge import (
    CONTRACT_COLUMNS,
    equivalence_table,
    failed_attempts,
    merge_runs,
    superseded_runs,
)
from serving_energy.analysis.package import (
    InconsistentPackage,
    PackageInputs,
    packaged_files,
    write_package,
)
from serving_energy.study.layout import ResultsLayout


def run_json(model="m", engine="onnx", provider="cpu", rep=1, status="ok", **metrics) -> dict:
    labels = {"onnx": "ONNX", "torch": "TORCH"}
    return {
        "status": status, "failure": None if status == "ok" else "2 of 6 requests failed",
        "model": model, "size_category": 1, "engine": engine, "provider": provider,
        "configuration": f"<{labels[engine]}, {provider.upper()}>",
        "configuration_id": f"{engine}-{provider}", "rep": rep, "n_requests": 6, "n_failed": 0,
        "new_tokens": 48, "standin": True, "started_at": "2026-01-01T00:00:00+00:00",
        "equivalence": {"status": "passed"},
        "machine": {"hostname": "h", "cpu_model": "c", "gpus": [], "git_commit": "abc"},
        "metrics": {"energy_cpu_j": 10.0, "energy_cpu_method": "estimate", "energy_global_j": 10.0,
                    "duration_s": 2.0, "cpu_usage_pct": 50.0, "ram_usage_pct": 5.0,
                    "energy_gpu_j": None, "detail": {"nested": "dropped"},
                    "energy_cpu_domains_j[package-0]": 9.0, **metrics},
    }  # fmt: skip


def write(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    return path


def test_merge_puts_contract_columns_first_and_keeps_methods(tmp_path):
    paths = [
        write(tmp_path / f"{engine}{rep}.json", run_json(engine=engine, rep=rep, duration_s=rep))
        for engine in ("onnx", "torch")
        for rep in (1, 2)
    ]
    runs = merge_runs(paths)
    assert runs.columns[: len(CONTRACT_COLUMNS)] == list(CONTRACT_COLUMNS)
    assert runs.height == 4
    assert runs["energy_cpu_method"].to_list() == ["estimate"] * 4
    assert runs["gpu_usage_pct"].null_count() == 4  # absent from a CPU run: null, never zero
    assert "detail" not in runs.columns
    assert not any("[" in column for column in runs.columns)
    assert runs.filter(pl.col("engine") == "onnx")["duration_s"].to_list() == [1.0, 2.0]
    assert set(runs["equivalence_status"]) == {"passed"}


def test_merge_refuses_a_failed_run(tmp_path):
    path = write(tmp_path / "bad.json", run_json(status="failed"))
    with pytest.raises(ValueError, match="only complete runs"):
        merge_runs([path])


def test_descriptions_come_from_the_config_not_the_run(tmp_path):
    path = write(tmp_path / "run.json", run_json())
    runs = merge_runs([path], {"m": {"size_category": 3, "parameters": 1_000}})
    assert runs["size_category"].to_list() == [3] and runs["parameters"].to_list() == [1_000]


def test_failed_attempts_are_listed_with_their_reason(tmp_path):
    layout = ResultsLayout(tmp_path)
    assert failed_attempts(layout).height == 0
    write(
        tmp_path / "failed/m/onnx-cpu/rep3/20260101T000000Z/failure.json",
        {
            **run_json(rep=3, status="failed"),
            "attempt": {"hostname": "node7", "slurm_job_id": "42"},
        },
    )
    write(
        tmp_path / "failed/m/onnx-cpu/rep1/20260102T000000Z/failure.json",
        {"model": "m", "configuration": "<ONNX, CPU>", "rep": 1, "status": "unfinished",
         "failure": "the attempt did not finish", "hostname": "node8", "started_at": "t"},
    )  # fmt: skip
    failed = failed_attempts(layout).sort("rep")
    assert failed["rep"].to_list() == [1, 3]
    assert failed["status"].to_list() == ["unfinished", "failed"]
    assert failed["reason"].to_list() == ["the attempt did not finish", "2 of 6 requests failed"]
    assert failed["hostname"].to_list() == ["node8", "node7"]
    assert failed["slurm_job_id"].to_list() == [None, "42"]


def test_the_equivalence_table_takes_identity_from_the_checks_not_their_paths(tmp_path):
    # a copy anywhere (here a flat folder) still names its model and configuration
    check = {"model": "m", "engine": "onnx", "provider": "cpu", "passed": True, "per_prompt": []}
    table = equivalence_table([write(tmp_path / "anywhere" / "check.json", check)])
    assert table.row(0, named=True) == {
        "model": "m", "configuration_id": "onnx-cpu", "engine": "onnx", "provider": "cpu",
        "passed": True,
    }  # fmt: skip


def test_a_check_without_its_identity_is_refused_naming_the_file(tmp_path):
    old = write(tmp_path / "engines/m/onnx-cpu/check.json", {"engine": "onnx", "passed": True})
    with pytest.raises(ValueError, match=f"{old}: the check does not say which model and provider"):
        equivalence_table([old])


def test_superseded_runs_are_listed_with_their_reason(tmp_path):
    layout = ResultsLayout(tmp_path)
    assert superseded_runs(layout).height == 0
    write(
        tmp_path / "superseded/m/onnx-cpu/rep2/20260101T000000Z/superseded.json",
        {"model": "m", "configuration": "<ONNX, CPU>", "rep": 2, "reason": "settings changed"},
    )
    (row,) = superseded_runs(layout).iter_rows(named=True)
    assert row["reason"] == "settings changed" and row["rep"] == 2


def package_inputs(results: Path, runs: pl.DataFrame, planned=()) -> PackageInputs:
    return PackageInputs(
        results_dir=results,
        study={"name": "s", "description": "d", "configurations": ["<ONNX, CPU>"],
               "excluded_configurations": {"<ONNX, CUDA>": "no GPU"}, "repetitions": 2},
        config={"repetitions": 2},
        command="snakemake --cores 1",
        runs=runs,
        failed=pl.DataFrame(),
        equivalence=pl.DataFrame({"model": ["m"], "configuration_id": ["onnx-cpu"], "passed": [False]}),
        software={"torch": "2.13.0"}, planned_runs=planned,
    )  # fmt: skip


def complete_run(results: Path, rep: int = 1) -> Path:
    folder = results / f"runs/m/onnx-cpu/rep{rep}"
    for name in ("requests.parquet", "timeline.parquet"):
        write(folder / name, {})
    return write(folder / "run.json", run_json(rep=rep))


def test_package_checksums_archive_and_readme(tmp_path):
    results = tmp_path / "results"
    run_path = complete_run(results)
    write(results / "engines/m/onnx/model.onnx", {"big": "export"})
    write(results / "engines/m/onnx-cpu/check.json", {"passed": False})
    (results / "logs").mkdir()
    (results / "logs/replication_package.log").write_text("still being written")
    runs = merge_runs([run_path])
    files = write_package(
        package_inputs(results, runs), results / "README.md", results / "SHA256SUMS",
        results / "replication-package.zip", exclude=[results / "logs/replication_package.log"],
    )  # fmt: skip
    names = {f.as_posix() for f in files}
    assert "engines/m/onnx-cpu/check.json" in names and "engines/m/onnx/model.onnx" not in names
    assert "logs/replication_package.log" not in names
    assert {"README.md", "config.yaml", "runs/m/onnx-cpu/rep1/run.json"} <= names
    for line in (results / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((results / name).read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(results / "replication-package.zip") as archive:
        assert "results/SHA256SUMS" in archive.namelist()
    readme = (results / "README.md").read_text()
    assert "CPU energy: estimate — 1 runs" in readme
    assert "<ONNX, CUDA> (no GPU)" in readme
    assert "random-weight stand-in" in readme
    assert "m onnx-cpu" in readme  # the configuration that disagreed with torch is named


def test_packaged_files_skip_hidden_staging_files(tmp_path):
    (tmp_path / ".run.json.x.tmp").write_text("partial")
    (tmp_path / "a.csv").write_text("x")
    assert packaged_files(tmp_path) == [Path("a.csv")]


def test_the_package_refuses_tables_that_list_a_missing_run(tmp_path):
    results = tmp_path / "results"
    runs = merge_runs([complete_run(results, 1), complete_run(results, 2)])
    (results / "runs/m/onnx-cpu/rep2/timeline.parquet").unlink()
    with pytest.raises(InconsistentPackage, match="runs/m/onnx-cpu/rep2/timeline.parquet"):
        write_package(
            package_inputs(results, runs), results / "README.md", results / "SHA256SUMS",
            results / "replication-package.zip",
        )  # fmt: skip
    assert not (results / "SHA256SUMS").exists()


def test_the_readme_says_which_planned_runs_are_missing(tmp_path):
    results = tmp_path / "results"
    runs = merge_runs([complete_run(results, 1)])
    planned = [{"model": "m", "engine": "onnx", "provider": "cpu", "rep": r} for r in (1, 2)]
    write_package(
        package_inputs(results, runs, planned), results / "README.md", results / "SHA256SUMS",
        results / "replication-package.zip",
    )  # fmt: skip
    readme = (results / "README.md").read_text()
    assert "incomplete: 1 of 2 planned runs are not measured yet" in readme
    assert "m <ONNX, CPU> rep 2" in readme


def test_the_readme_lists_the_runs_left_out_and_the_method(tmp_path):
    results = tmp_path / "results"
    runs = merge_runs([complete_run(results, 1)])
    excluded = pl.DataFrame(
        {"model": ["m"], "configuration": ["<ONNX, CPU>"], "rep": [2],
         "reasons": ["idle baseline: CPU usage 97.0 % in idle-before"]}
    )  # fmt: skip
    inputs = package_inputs(results, runs)
    inputs = PackageInputs(**{**inputs.__dict__, "excluded": excluded, "analysis_method": "paper"})
    write_package(
        inputs, results / "README.md", results / "SHA256SUMS", results / "replication-package.zip"
    )
    readme = (results / "README.md").read_text()
    assert "**paper** analysis method" in readme
    assert "m <ONNX, CPU> rep 2: idle baseline: CPU usage 97.0 % in idle-before" in readme
