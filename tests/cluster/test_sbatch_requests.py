"""What SLURM itself says about the paper study's sbatch lines on a small node (sbatch --test-only).

The one-node cluster of conftest.py is a small machine (its real CPUs and memory) without GPUs
declared as GRES. Every CPU job of the paper's study must be accepted there as the profile writes
it; every job asking for a GPU must be refused at submission with SLURM's own reason, which is
what the docs tell clusters without GPU GRES to expect.
"""

from __future__ import annotations

import shlex

import pytest

from tests.cluster.localslurm import PARTITION, LocalSlurm
from tests.cluster.plan import REPO, planned_jobs, sbatch_call

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def one_job_per_rule_and_provider(tmp_path_factory) -> dict[tuple[str, str], dict]:
    jobs = planned_jobs(REPO / "config" / "config.yaml", tmp_path_factory.mktemp("paper-plan"))
    chosen = {}
    for job in jobs:
        if job["rule"] != "all":
            wildcards = job["wildcards"]
            # An export's provider is in its artefact (torchscript/cuda).
            provider = wildcards.get("provider") or (
                wildcards.get("artefact", "").rpartition("/")[2]
                if "/" in wildcards.get("artefact", "")
                else ""
            )
            chosen.setdefault((job["rule"], provider), job)
    return chosen


def ask_sbatch(cluster: LocalSlurm, job: dict, workdir) -> tuple[int, str]:
    call = sbatch_call(job, partition=PARTITION, workdir=str(workdir))
    command = [*shlex.split(call.replace("--parsable", "--test-only")), "--wrap", "true"]
    result = cluster.run(command, check=False)
    return result.returncode, result.stderr.strip()


def test_cpu_jobs_fit_a_small_node(slurm_cluster, one_job_per_rule_and_provider, tmp_path):
    cpu_jobs = {key: job for key, job in one_job_per_rule_and_provider.items() if key[1] != "cuda"}
    assert {"measure", "check_engine", "export", "merge_runs"} <= {r for r, _ in cpu_jobs}
    for key, job in cpu_jobs.items():
        returncode, message = ask_sbatch(slurm_cluster, job, tmp_path)
        assert returncode == 0 and "to start at" in message, (key, message)


def test_cuda_jobs_need_gpus_declared_as_gres(
    slurm_cluster, one_job_per_rule_and_provider, tmp_path
):
    cuda_jobs = {
        key: job
        for key, job in one_job_per_rule_and_provider.items()
        if key[1] == "cuda" and key[0] in ("measure", "check_engine", "export")
    }
    assert len(cuda_jobs) == 3
    for key, job in cuda_jobs.items():
        returncode, message = ask_sbatch(slurm_cluster, job, tmp_path)
        assert returncode != 0 and "Invalid generic resource" in message, (key, message)
