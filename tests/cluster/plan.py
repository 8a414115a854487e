"""The sbatch command line of every job a study plans with profiles/slurm, without a cluster.

A dry run with the profile plans the study; each planned job's resources are turned into the sbatch
call by the plugin's own functions (the ones its executor calls before it runs sbatch).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"


def planned_jobs(configfile: Path, workdir: Path, *extra: str) -> list[dict]:
    """Dry run of a study with the slurm profile; every planned job's block, parsed."""
    result = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n",
            "-s", str(REPO / "Snakefile"),
            "--workflow-profile", str(PROFILE),
            "--configfile", str(configfile),
            "-d", str(workdir), *extra,
        ],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(result.stdout[-3000:] + result.stderr[-3000:])
    jobs = []
    # grouped jobs (profile `groups:`) are printed indented under their group
    for block in re.split(r"\n(?=\s*rule \w+:\n)", result.stdout):
        header = re.match(r"\s*rule (\w+):\n", block)
        if not header:
            continue
        job = {"rule": header.group(1), "wildcards": {}, "resources": {}}
        for key in ("wildcards", "resources"):
            line = re.search(rf"^\s+{key}: (.*)$", block, re.M)
            if line:
                job[key] = dict(item.split("=", 1) for item in line.group(1).split(", "))
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        job["threads"] = int(threads.group(1)) if threads else 1
        priority = re.search(r"^\s+priority: (-?\d+)$", block, re.M)
        job["priority"] = int(priority.group(1)) if priority else 0
        jobs.append(job)
    return jobs


class _Resources(dict):
    __getattr__ = dict.get


def sbatch_call(job: dict, *, partition: str = "", workdir: str = ".") -> str:
    """The plugin's sbatch command line for a planned job (as its run_job builds it, less --wrap)."""
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
        "run_uuid": "uuid", "slurm_logfile": "slurm-%j.log", "comment_str": f"rule_{job['rule']}",
        "account": "", "partition": f" -p {partition}" if partition else "", "workdir": workdir,
    }  # fmt: skip
    return get_submit_command(fake, params) + set_gres_string(fake)
