"""Where one attempt at a run leaves its files, so that no measurement is ever lost.

An attempt starts by writing a provisional failure record under ``failed/<run>/<attempt>/``: if
the job is killed outright (SIGKILL, a node failure, a power cut) that record stays and says so.
An attempt that fails, or is interrupted, replaces it with its reason and everything it measured.
An attempt that succeeds moves the run it replaces (if any) to ``superseded/<run>/<time>/`` with
the reason, puts the new run in place with two renames, and removes its provisional record.

The measure rule marks its outputs ``update()``, so Snakemake leaves the previous run where it is
while the new attempt runs (it would otherwise delete it first); the previous run only moves once
a complete new one is there to take its place.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from serving_energy.core.io import publish_tree, staged_dir, write_atomic_json
from serving_energy.study.design import identity_changes
from serving_energy.study.layout import (
    FAILURE_RECORD,
    RUN_FILES,
    SUPERSEDED_RECORD,
    ResultsLayout,
    RunKey,
)

WriteFiles = Callable[[Path], None]
UNFINISHED = (
    "the attempt did not finish: its job was killed before it could record a reason (SIGKILL, "
    "an out-of-memory kill, a node failure or a power cut); the run will be measured again"
)


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def slurm_job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID")


@dataclass(frozen=True)
class Attempt:
    layout: ResultsLayout
    key: RunKey
    attempt_id: str
    started_at: str

    @property
    def folder(self) -> Path:
        return self.layout.failed_dir(self.key) / self.attempt_id

    def provenance(self) -> dict:
        return {
            "attempt_id": self.attempt_id,
            "started_at": self.started_at,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "slurm_job_id": slurm_job_id(),
        }


def begin_attempt(layout: ResultsLayout, key: RunKey) -> Attempt:
    """Record that an attempt started, as a failure until it says otherwise."""
    attempt = Attempt(layout, key, _timestamp(), datetime.now(UTC).isoformat())
    write_atomic_json(
        attempt.folder / FAILURE_RECORD,
        {**key.to_dict(), "status": "unfinished", "failure": UNFINISHED, **attempt.provenance()},
    )
    return attempt


def _copy_logs(folder: Path, logs: Mapping[str, Path]) -> None:
    for name, log in logs.items():
        if Path(log).is_file():
            shutil.copyfile(log, folder / name)


def keep_failure(
    attempt: Attempt, record: dict, write_files: WriteFiles, logs: Mapping[str, Path] | None = None
) -> Path:
    """Replace the provisional record with the real one and everything the attempt measured."""
    folder = attempt.folder
    folder.mkdir(parents=True, exist_ok=True)
    try:
        write_files(folder)
    finally:
        _copy_logs(folder, logs or {})
        write_atomic_json(folder / FAILURE_RECORD, {**record, "attempt": attempt.provenance()})
        publish_tree(folder)
    return folder


def publish_run(
    attempt: Attempt, record: dict, write_files: WriteFiles, logs: Mapping[str, Path] | None = None
) -> Path | None:
    """Put a complete run in place; returns where the run it replaced went (None if none)."""
    run_dir = attempt.layout.run_dir(attempt.key)
    with staged_dir(run_dir) as staging:
        write_files(staging)
        _copy_logs(staging, logs or {})
        write_atomic_json(staging / "run.json", record)
        publish_tree(staging)
        # Snakemake makes the (empty) folder before the job; the rename replaces an empty one.
        occupied = run_dir.is_dir() and any(run_dir.iterdir())
        superseded = supersede(attempt, record) if occupied else None
        os.replace(staging, run_dir)
    shutil.rmtree(attempt.folder, ignore_errors=True)
    _remove_empty_parents(attempt.folder.parent, stop=attempt.layout.root)
    return superseded


def supersede(attempt: Attempt, new_record: dict) -> Path:
    """Move the current run folder aside with why it was replaced; nothing in it is dropped."""
    layout, key = attempt.layout, attempt.key
    run_dir = layout.run_dir(key)
    old_record = _read_json(run_dir / "run.json")
    complete = all((run_dir / name).is_file() for name in RUN_FILES)
    changes = identity_changes(
        (old_record or {}).get("identity") or {}, new_record.get("identity") or {}
    )
    if not complete:
        reason = "incomplete: the run folder lacked some of " + ", ".join(RUN_FILES)
    elif changes:
        reason = "measurement settings changed: " + "; ".join(
            f"{name}: {old!r} -> {new!r}" for name, (old, new) in changes.items()
        )
    else:
        reason = (
            "measured again with the same settings (a forced re-run, or one of its inputs "
            "changed: prompts, model files, engine export or its equivalence check)"
        )
    destination = layout.superseded_dir(key) / _timestamp()
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run_dir, destination)
    write_atomic_json(
        destination / SUPERSEDED_RECORD,
        {
            **key.to_dict(),
            "reason": reason,
            "changes": {name: list(pair) for name, pair in changes.items()},
            "superseded_at": datetime.now(UTC).isoformat(),
            "superseded_by": attempt.provenance(),
            "previous_started_at": (old_record or {}).get("started_at"),
            "user": _user(),
        },
    )
    return destination


def _read_json(path: Path) -> dict | None:
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Drop failed/<model>/<configuration>/rep<N>/ folders left empty by a successful attempt."""
    folder, stop = Path(folder), Path(stop).resolve()
    while folder.resolve() != stop and folder.resolve().is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
