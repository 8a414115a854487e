"""The workflow profiles: default (one measurement at a time) and slurm (a node per model job).

No cluster needed here: a dry run with the slurm profile plans the paper's study, and each planned
job's resources are turned into the sbatch command line by the plugin's own functions
(tests/cluster/plan.py). tests/cluster/ runs the smoke study on a real one-node SLURM cluster.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from tests.cluster.plan import PROFILE, REPO, planned_jobs, sbatch_call

DEFAULT = REPO / "profiles" / "default" / "config.yaml"
SLURM = PROFILE / "config.yaml"
# Jobs that hold a model in memory: each gets a whole node.
WHOLE_NODE_RULES = ("build_standin", "export", "check_engine", "measure")
GPU_RULES = ("export", "check_engine", "measure")


def resource_list(profile: dict, key: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in profile.get(key, []))


def slurm_profile() -> dict:
    return yaml.safe_load(SLURM.read_text())


def test_profiles_parse():
    for path in (DEFAULT, SLURM):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_default_profile_serialises_measurements():
    profile = yaml.safe_load(DEFAULT.read_text())
    assert resource_list(profile, "resources")["machine"] == "1"
    assert "executor" not in profile
    assert "software-deployment-method" not in profile  # left to the user (--sdm conda)


def test_slurm_profile_settings():
    profile = slurm_profile()
    assert profile["executor"] == "slurm"
    assert int(resource_list(profile, "resources")["machine"]) > 1  # node-local lock
    assert "cuda={policy: require}" in profile["config"]
    assert {"runtime", "mem_mb"} <= set(profile["default-resources"])
    # squeue, not sacct: works without accounting and sees "CANCELLED" (plugin 2.8.0 hangs on
    # sacct's "CANCELLED by <uid>"); the plugin needs MinJobAge >= 3 x the first check delay.
    assert profile["slurm-status-command"] == "squeue"
    assert 3 * profile["slurm-init-seconds-before-status-checks"] <= 180
    assert profile["max-jobs-per-timespan"] == "1/1s"  # submissions one by one, by priority
    assert "set-threads" not in profile  # CPUs come from SLURM, not from a figure in the profile
    for rule in WHOLE_NODE_RULES:
        block = profile["set-resources"][rule]
        assert block["slurm_extra"] == "'--exclusive'" and block["mem_mb"] == 0, rule


def test_slurm_workflow_profile_replaces_the_default_one():
    """With --workflow-profile profiles/slurm, profiles/default (machine=1) is not applied."""
    from snakemake.cli import parse_args

    snakefile = str(REPO / "Snakefile")
    _, args = parse_args(["--workflow-profile", str(PROFILE), "-n", "-s", snakefile])
    assert args.executor == "slurm"
    assert args.resources["machine"].value == 1000
    assert args.keep_going is True
    # Without the option the default profile (found next to the Snakefile) applies: machine=1.
    _, args = parse_args(["-n", "-s", snakefile])
    assert args.resources["machine"].value == 1
    assert args.executor in (None, "local")


def test_command_line_set_resources_replaces_the_profiles_whole_block():
    """What the README warns about: one --set-resources drops every rule's --exclusive and GPU."""
    from snakemake.cli import parse_args

    argv = ["--workflow-profile", str(PROFILE), "-n", "-s", str(REPO / "Snakefile")]
    _, args = parse_args(argv)
    assert "slurm_extra" in args.set_resources["check_engine"]
    _, args = parse_args([*argv, "--set-resources", "measure:runtime=600"])
    assert set(args.set_resources) == {"measure"}
    assert set(args.set_resources["measure"]) == {"runtime"}


@pytest.mark.parametrize(("cpus_on_node", "expected"), [(None, 1), ("16", 16), ("2", 2)])
def test_whole_node_jobs_ask_one_cpu_and_run_on_every_cpu_of_the_node(
    monkeypatch, cpus_on_node, expected
):
    """cpus_per_task is evaluated where Snakemake submits (no SLURM_CPUS_ON_NODE: 1, sbatch gets
    --cpus-per-task=1 beside --exclusive) and again in the job, where SLURM sets it to the node's
    CPUs: the plugin's srun step then gets all of them."""
    from snakemake.resources import Resource

    expression = slurm_profile()["set-resources"]["measure"]["cpus_per_task"]
    if cpus_on_node is None:
        monkeypatch.delenv("SLURM_CPUS_ON_NODE", raising=False)
    else:
        monkeypatch.setenv("SLURM_CPUS_ON_NODE", cpus_on_node)
    value = Resource.cli_evaluator(
        "cpus_per_task", expression, wildcards=SimpleNamespace(), input=[], attempt=1,
        async_run=None,
    )  # fmt: skip
    assert value == expected


@pytest.fixture(scope="module")
def paper_jobs(tmp_path_factory) -> list[dict]:
    """Dry run of the paper's study with the slurm profile."""
    return planned_jobs(REPO / "config" / "config.yaml", tmp_path_factory.mktemp("slurm-plan"))


def test_dry_run_plans_the_whole_study(paper_jobs):
    measures = [job for job in paper_jobs if job["rule"] == "measure"]
    assert len(measures) == 12 * 7 * 10  # CUDA configurations kept (cuda policy: require)


@pytest.mark.parametrize("rule", WHOLE_NODE_RULES[1:])  # build_standin: the paper has no stand-in
def test_model_jobs_get_a_whole_node_and_gpus_only_for_cuda(paper_jobs, rule):
    jobs = [job for job in paper_jobs if job["rule"] == rule]
    assert jobs
    for job in jobs:
        call = sbatch_call(job)
        # the whole node: every CPU and (no --mem) all its memory; sbatch accepts it on any node
        assert " --exclusive" in call and " --cpus-per-task=1" in call, call
        assert "--mem" not in call, call
        wildcards = job["wildcards"]
        on_cuda = wildcards.get("provider") == "cuda" or wildcards.get("artefact", "").endswith(
            "/cuda"
        )
        if on_cuda and rule in GPU_RULES:
            assert re.search(r" --gpus=1\b", call), call
        else:
            assert "--gpus" not in call and "--gres" not in call, call


def test_other_jobs_share_nodes(paper_jobs):
    others = [job for job in paper_jobs if job["rule"] not in (*WHOLE_NODE_RULES, "all")]
    assert {job["rule"] for job in others} >= {"fetch_model", "merge_runs", "sample_prompts"}
    for job in others:
        call = sbatch_call(job)
        assert "--exclusive" not in call and "--gpus" not in call, call
        assert " --mem 8000" in call and " -t 60" in call, call


def test_measurements_carry_the_seeded_order_as_priority(paper_jobs):
    priorities = [job["priority"] for job in paper_jobs if job["rule"] == "measure"]
    assert sorted(priorities) == list(range(1, 12 * 7 * 10 + 1))
