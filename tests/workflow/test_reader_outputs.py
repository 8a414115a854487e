"""What a reader of the smoke study gets: the plan against the real time, the time-energy and
J/token figures, carbon when it is set (through Snakemake)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.helpers import run_snakemake

from .conftest import SMOKE_CONFIG, SMOKE_CONSOLE_FILE, SMOKE_RUNS, SMOKE_WALL_FILE, smoke

pytestmark = pytest.mark.e2e

# The forecast from the config alone errs long (conservative defaults), by at most this factor.
FORECAST_FACTOR = 3.0


def test_the_plan_forecasts_the_smoke_study_within_a_stated_factor(study, tmp_path):
    measured_s = float((study / SMOKE_WALL_FILE).read_text())
    result = run_snakemake(
        "--snakefile", "Snakefile", "--directory", str(tmp_path), "--configfile",
        str(SMOKE_CONFIG), "--cores", "1", "plan",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads((tmp_path / "results" / "plan" / "plan.json").read_text())
    forecast_s = plan["wall"]["total_s"]
    assert measured_s / FORECAST_FACTOR <= forecast_s <= measured_s * FORECAST_FACTOR, (
        forecast_s,
        measured_s,
    )
    assert plan["runs_total"] == SMOKE_RUNS and plan["fits"]


def test_the_plan_of_a_finished_study_is_measured_and_has_nothing_left(study_copy):
    result = smoke(study_copy, "plan")
    assert result.returncode == 0, result.stderr[-3000:]
    plan = json.loads((study_copy / "results" / "plan" / "plan.json").read_text())
    assert plan["runs_done"] == plan["runs_total"] == SMOKE_RUNS
    assert all(line["run_wall_s"]["source"] == "measured" for line in plan["run_lines"])
    stages = [f for m in plan["models"] for f in m["stage_wall_s"].values()]
    assert stages and all(f["source"] == "measured" for f in stages)  # benchmark files
    # A run left is only forecast time: the study is done.
    assert plan["wall"]["left_s"] == pytest.approx(plan["once_s"]["analysis_s"]["value"])


def test_every_run_line_says_how_much_of_the_study_is_left(study):
    console = (study / SMOKE_CONSOLE_FILE).read_text()
    lines = [line for line in console.splitlines() if line.startswith("study: ")]
    n = SMOKE_RUNS
    assert len(lines) == n, console[-3000:]
    assert lines[0].startswith(f"study: 1 of {n} runs done, {n - 1} left, about ")
    assert lines[-1].startswith(f"study: {n} of {n} runs done, 0 left, about ")


def test_the_time_energy_and_energy_per_token_figures_exist(study):
    figures = study / "results" / "figures" / "study"
    for name in (
        "time_energy_tiny-gpt2.png", "time_energy_tiny-llama.png",
        "time_energy_category_1.png", "time_energy_category_2.png", "energy_per_token_j.png",
    ):  # fmt: skip
        assert (figures / name).is_file(), name
    table = pl.read_csv(study / "results" / "tables" / "table4_cpu.csv")
    assert table["energy_per_token_j"].drop_nulls().len() == table.height


def test_carbon_set_in_the_config_reaches_runs_tables_and_package_labelled(study_copy):
    run = study_copy / "results" / "runs" / "tiny-gpt2" / "onnx-cpu" / "rep1" / "run.json"
    before = run.read_bytes()
    result = smoke(
        study_copy, "--config", "carbon={intensity_g_per_kwh: 250, source: a test constant}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert run.read_bytes() == before  # nothing measured again
    runs = pl.read_csv(study_copy / "results" / "metrics" / "runs.csv")
    assert (runs["co2e_g"] == runs["energy_global_j"] / 3.6e6 * 250).all()
    assert set(runs["co2e_basis"]) == {"estimate"}  # a VM's energy is estimated, so its CO2e
    table = pl.read_csv(study_copy / "results" / "tables" / "table4_cpu.csv")
    assert table["co2e_g"].drop_nulls().len() == table.height
    assert "CO2e IS AN ESTIMATE" in table["note"][0]
    readme = (study_copy / "results" / "README.md").read_text()
    assert (
        "## Emissions" in readme and "250 gCO2e/kWh (constant; source: a test constant)" in readme
    )
