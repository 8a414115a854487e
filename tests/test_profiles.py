"""The workflow profiles: default (one measurement at a time) and slurm (a node per measurement).

The slurm check needs no cluster: a dry run with the profile plans the paper's study, and each
planned measurement's resources are turned into the sbatch command line by the plugin's own
functions (the ones its executor calls before it runs sbatch).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "profiles" / "default" / "config.yaml"
SLURM = REPO / "profiles" / "slurm" / "config.yaml"


def resource_list(profile: dict, key: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in profile.get(key, []))


def test_profiles_parse():
    for path in (DEFAULT, SLURM):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_default_profile_serialises_measurements():
    profile = yaml.safe_load(DEFAULT.read_text())
    assert resource_list(profile, "resources")["machine"] == "1"
    assert "executor" not in profile
    assert "software-deployment-method" not in profile  # left to the user (--sdm conda)


def test_slurm_profile_settings():
    profile = yaml.safe_load(SLURM.read_text())
    assert profile["executor"] == "slurm"
    assert int(resource_list(profile, "resources")["machine"]) > 1  # node-local lock
    assert "cuda={policy: require}" in profile["config"]
    assert {"runtime", "mem_mb"} <= set(profile["default-resources"])
    for rule in ("measure", "check_engine"):
        assert profile["set-resources"][rule]["slurm_extra"] == "'--exclusive'"


def test_slurm_workflow_profile_replaces_the_default_one():
    """With --workflow-profile profiles/slurm, profiles/default (machine=1) is not applied."""
    from snakemake.cli import parse_args

    snakefile = str(REPO / "Snakefile")
    _, args = parse_args(["--workflow-profile", str(SLURM.parent), "-n", "-s", snakefile])
    assert args.executor == "slurm"
    assert args.resources["machine"].value == 1000
    assert args.keep_going is True
    # Without the option the default profile (found next to the Snakefile) applies: machine=1.
    _, args = parse_args(["-n", "-s", snakefile])
    assert args.resources["machine"].value == 1
    assert args.executor in (None, "local")


@pytest.fixture(scope="module")
def planned_jobs(tmp_path_factory) -> list[dict]:
    """Dry run of the paper's study with the slurm profile; every planned job's block, parsed."""
    workdir = tmp_path_factory.mktemp("slurm-dry-run")
    result = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n",
            "-s", str(REPO / "Snakefile"),
            "--workflow-profile", str(SLURM.parent),
            "--configfile", str(REPO / "config" / "config.yaml"),
            "-d", str(workdir),
        ],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=rule \w+:\n)", result.stdout):
        header = re.match(r"rule (\w+):\n", block)
        if not header:
            continue
        job = {"rule": header.group(1), "wildcards": {}, "resources": {}}
        for key in ("wildcards", "resources"):
            line = re.search(rf"^    {key}: (.*)$", block, re.M)
            if line:
                job[key] = dict(item.split("=", 1) for item in line.group(1).split(", "))
        threads = re.search(r"^    threads: (\d+)$", block, re.M)
        job["threads"] = int(threads.group(1)) if threads else 1
        jobs.append(job)
    return jobs


class _Resources(dict):
    __getattr__ = dict.get


def sbatch_call(job: dict) -> str:
    """The plugin's sbatch command line for a planned job (as its run_job builds it)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    resources = _Resources()
    for name, value in job["resources"].items():
        resources[name] = int(value) if value.isdigit() else value
    fake = SimpleNamespace(
        name=job["rule"], resources=resources, threads=job["threads"], is_group=lambda: False
    )
    validate_slurm_extra(fake)
    params = {
        "run_uuid": "uuid", "slurm_logfile": "slurm/%j.log", "comment_str": f"rule_{job['rule']}",
        "account": "", "partition": "", "workdir": ".",
    }  # fmt: skip
    return get_submit_command(fake, params) + set_gres_string(fake)


def test_dry_run_plans_the_whole_study(planned_jobs):
    measures = [job for job in planned_jobs if job["rule"] == "measure"]
    assert len(measures) == 12 * 7 * 10  # CUDA configurations kept (cuda policy: require)


@pytest.mark.parametrize("rule", ["measure", "check_engine"])
def test_measurement_jobs_request_an_exclusive_node_and_gpus_only_for_cuda(planned_jobs, rule):
    jobs = [job for job in planned_jobs if job["rule"] == rule]
    providers = {job["wildcards"]["provider"] for job in jobs}
    assert providers == {"cpu", "cuda"}
    for job in jobs:
        call = sbatch_call(job)
        assert " --exclusive" in call, call
        assert "--mem 64000" in call if rule == "measure" else "--mem 32000" in call
        if job["wildcards"]["provider"] == "cuda":
            assert re.search(r" --gpus=1\b", call), call
        else:
            assert "--gpus" not in call and "--gres" not in call, call


def test_other_jobs_share_nodes(planned_jobs):
    for job in planned_jobs:
        if job["rule"] not in {"measure", "check_engine", "all"}:
            assert "--exclusive" not in sbatch_call(job), job
