"""The one finished smoke study that every end-to-end test shares (copies for destructive ones)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, run_snakemake, start_snakemake

SMOKE_CONFIG = REPO / "config" / "smoke.yaml"
_SMOKE = yaml.safe_load(SMOKE_CONFIG.read_text())
# What the smoke study measures, from its config (a configuration added there is tested too).
SMOKE_MODELS: tuple[str, ...] = tuple(_SMOKE["models"])
SMOKE_CONFIGURATIONS: tuple[str, ...] = tuple(
    f"{c['engine']}-{c['provider']}" for c in _SMOKE["configurations"]
)
SMOKE_REPS: tuple[int, ...] = tuple(range(1, _SMOKE["repetitions"] + 1))
SMOKE_RUNS = len(SMOKE_MODELS) * len(SMOKE_CONFIGURATIONS) * len(SMOKE_REPS)


# Beside results/, not in the package: the study's wall time and console, for the tests.
SMOKE_WALL_FILE = "smoke-wall-s.txt"
SMOKE_CONSOLE_FILE = "smoke-console.txt"


def smoke(workdir: Path, *args: str, timeout_s: float = 1800):
    """Snakemake on the smoke study in ``workdir``; ``args`` go last (targets, options)."""
    return run_snakemake(
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(SMOKE_CONFIG), "--cores", "2", *args, timeout_s=timeout_s,
    )  # fmt: skip


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("smoke")
    started = time.monotonic()
    result = smoke(workdir)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    # How long the whole study took, for the plan's forecast to be checked against.
    (workdir / SMOKE_WALL_FILE).write_text(f"{time.monotonic() - started:.1f}\n")
    (workdir / SMOKE_CONSOLE_FILE).write_text(result.stdout + result.stderr)
    return workdir


@pytest.fixture
def study_copy(study, tmp_path) -> Path:
    """A private copy of the finished study (timestamps and Snakemake's records kept)."""
    copy = tmp_path / "study"
    shutil.copytree(study, copy, symlinks=True)
    return copy


@pytest.fixture
def background_snakemake():
    """Start Snakemake in the background; whatever the test does, nothing it started survives it
    (each Snakemake has a session of its own; its model servers die with their jobs)."""
    started = []

    def start(*args: str):
        process = start_snakemake(*args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
