"""Shared helpers for tests that run the workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def offline_environment() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def run_snakemake(
    *args: str, cwd: Path = REPO, timeout_s: float = 1800
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=offline_environment(),
        timeout=timeout_s,
    )


def start_snakemake(*args: str, cwd: Path = REPO) -> subprocess.Popen:
    """Snakemake in the background, in a session of its own (so a test can kill it alone)."""
    return subprocess.Popen(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=offline_environment(),
        start_new_session=True,
    )


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts per rule from Snakemake's "Job stats" table (empty when nothing is planned)."""
    counts: dict[str, int] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def load_config(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
