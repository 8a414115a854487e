"""What failed in a Snakemake invocation, said once at its end.

A study runs for weeks with ``keep-going``: a failed export, check or run must not stop the other
independent jobs, but it must not scroll away either. Every job logs through ``logs.log_to``,
which ends a failed job's log with ``FAILED_MARK``; the invocation's ``onerror`` handler lists the
logs under ``results/logs`` that failed since it started, one line each. (Snakemake's own
"Error in rule" blocks are not in its log under the calm console's ``quiet: rules``.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The line ``log_to`` writes into a job's log when the job fails.
FAILED_MARK = "job failed"


@dataclass(frozen=True)
class FailedJob:
    stage: str  # the log folder under results/logs: export, check, measure, build_standin, ...
    log: Path
    reason: str  # the error's last line in the log


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*")


def _reason(lines: list[str]) -> str:
    """The last exception line of the log (its traceback's last line), else its last line."""
    for line in reversed(lines):
        if _EXCEPTION_LINE.match(line.strip()):
            return line.strip()
    return next((line.strip() for line in reversed(lines) if line.strip()), "see the log")


def failed_jobs(logs_root: Path, since_epoch_s: float) -> list[FailedJob]:
    """Jobs whose log under ``logs_root`` was written since ``since_epoch_s`` and says it failed."""
    logs_root = Path(logs_root)
    failed = []
    for path in sorted(logs_root.rglob("*.log")):
        try:
            if path.stat().st_mtime < since_epoch_s:
                continue
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        if any(FAILED_MARK in line for line in lines):
            stage = path.relative_to(logs_root).parts[0]
            failed.append(FailedJob(stage=stage, log=path, reason=_reason(lines)))
    return failed


def failure_summary(logs_root: Path, since_epoch_s: float, snakemake_logs=()) -> str:
    """The lines that end a failed invocation: what failed, where its log is, what to do next."""
    jobs = failed_jobs(logs_root, since_epoch_s)
    own = ", ".join(str(p) for p in snakemake_logs) or "the console above"
    if not jobs:
        return f"The invocation failed outside the study's jobs; Snakemake's log: {own}"
    lines = [f"{len(jobs)} job(s) failed in this invocation; the other independent jobs went on:"]
    for job in jobs:
        lines.append(f"  - {job.stage}: {job.reason[:160]} (log: {job.log})")
    lines.append(
        f"Snakemake's log: {own}. Run the same command again to redo only what is missing."
    )
    return "\n".join(lines)
