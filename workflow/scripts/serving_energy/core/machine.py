"""What a run ran on: hardware and software, recorded with every run so results stay comparable."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from serving_energy.core.versions import library_versions


def cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def gpus() -> list[dict[str, str]]:
    """Name, driver and memory of each NVIDIA GPU, from nvidia-smi (empty without one)."""
    if not shutil.which("nvidia-smi"):
        return []
    query = subprocess.run(
        [
            "nvidia-smi",
            "--query-gpu=index,name,driver_version,memory.total,uuid",
            "--format=csv,noheader",
        ],
        capture_output=True,
        text=True,
    )
    if query.returncode != 0:
        return []
    keys = ("index", "name", "driver_version", "memory_total", "uuid")
    return [
        dict(zip(keys, (field.strip() for field in line.split(",")), strict=False))
        for line in query.stdout.splitlines()
        if line.strip()
    ]


def gpu_present(driver_dir: Path = Path("/proc/driver/nvidia/gpus")) -> bool:
    """Whether this machine has an NVIDIA GPU, without importing a framework (fast, for planning)."""
    if driver_dir.is_dir() and any(driver_dir.iterdir()):
        return True
    return bool(gpus())


def git_commit(folder: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    if result.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "")


def describe_machine(packages: Sequence[str], workflow_dir: Path | None = None) -> dict:
    """The machine a run measures on, with the versions of ``packages`` installed."""
    import psutil

    return {
        "hostname": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "ram_total_bytes": psutil.virtual_memory().total,
        "gpus": gpus(),
        "library_versions": library_versions(packages),
        "git_commit": git_commit(workflow_dir) if workflow_dir else None,
    }
