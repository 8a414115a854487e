"""The README's re-run recipes, run as written (on the smoke study instead of the paper's)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import REPO, planned_jobs, run_snakemake

from .conftest import SMOKE_CONFIG, SMOKE_RUNS

pytestmark = pytest.mark.e2e

# The paper's names in the README, and the smoke study's stand-ins for them.
SUBSTITUTIONS = {"phi-2": "tiny-llama", "rep3": "rep2", "repetitions: [3]": "repetitions: [2]"}


def readme_recipes() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- recipes.*?-->\n```bash\n(.*?)```\n<!-- /recipes -->", text, re.S)
    assert block, "the README lost its recipes block"
    commands = []
    for line in block.group(1).splitlines():
        if line.startswith(".venv/bin/snakemake"):
            for paper, smoke in SUBSTITUTIONS.items():
                line = line.replace(paper, smoke)
            commands.append(shlex.split(line)[1:])
    return commands


def run_recipe(workdir: Path, arguments: list[str]):
    # The README's advice for another study: --configfile goes last.
    return run_snakemake(
        *arguments,
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(SMOKE_CONFIG),
    )  # fmt: skip


def test_every_readme_recipe_does_what_the_readme_says(study_copy):
    recipes = readme_recipes()
    assert len(recipes) == 9
    (one_run, forced, by_model, by_configuration, by_all, analysis, report, unlock, plain) = recipes
    run = study_copy / "results/runs/tiny-llama/onnx-cpu/rep2"
    shutil.rmtree(run)

    def jobs(arguments):
        result = run_recipe(study_copy, arguments)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{shlex.join(arguments)}\n{output[-3000:]}"
        return planned_jobs(output)

    assert jobs(one_run) == {"measure": 1}  # the missing run, and nothing else
    assert jobs(forced)["measure"] == 1
    (superseded,) = (study_copy / "results/superseded/tiny-llama/onnx-cpu/rep2").iterdir()
    assert (superseded / "superseded.json").is_file()
    for targets in (by_model, by_configuration, by_all):
        done = jobs(targets)
        assert "measure" not in done
        assert pl.read_csv(study_copy / "results/metrics/runs.csv").height == SMOKE_RUNS
    done = jobs(analysis)
    assert "measure" not in done and done["statistical_tests"] == 1
    jobs(report)
    with zipfile.ZipFile(study_copy / "report.zip") as archive:
        assert any(name.endswith("runs.csv") for name in archive.namelist())
    jobs(unlock)
    jobs(plain)
    assert "measure" not in jobs(["-n", *plain])  # and now nothing is left to do


def test_copied_results_are_kept_with_touch(study, tmp_path):
    """A downloaded package: old file times, no resources/. --touch keeps every run."""
    workdir = tmp_path / "downloaded"
    shutil.copytree(study / "results", workdir / "results")
    for path in [workdir / "results", *(workdir / "results").rglob("*")]:
        os.utime(path, (946684800, 946684800), follow_symlinks=False)  # 2000-01-01
    assert "measure" in planned_jobs(
        run_recipe(workdir, ["-n", "--cores", "1"]).stdout
    )  # without it, the scripts look newer than every run
    result = run_recipe(workdir, ["--cores", "1", "--touch"])
    assert result.returncode == 0, result.stderr[-3000:]
    after = run_recipe(workdir, ["-n", "--cores", "1"])
    assert "Nothing to be done" in after.stdout + after.stderr
    assert not (workdir / "resources").exists()  # nothing was fetched or built
