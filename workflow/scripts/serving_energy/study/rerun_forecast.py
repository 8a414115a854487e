"""Before anything runs: which existing runs Snakemake is about to measure again, and why.

A study is weeks of machine time, so re-measuring must never be a surprise. Snakemake redoes a
measure job when its params (the run's measurement identity) changed or when the entry script is
newer than the run; both can be seen before the DAG runs, by reading what each existing run
recorded. Superseded runs are kept (``run_store``), but the user should decide knowingly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from serving_energy.study.design import identity_changes
from serving_energy.study.layout import RunKey


@dataclass(frozen=True)
class Remeasure:
    key: RunKey
    cause: str  # "settings" or "code"
    detail: str


def forecast(
    runs: Iterable[tuple[RunKey, Path, Mapping]],
    script: Path | None = None,
    compare_settings: bool = True,
) -> list[Remeasure]:
    """``runs``: (key, its run.json, the identity the workflow would measure it with now).

    ``script`` is the measure rule's script when Snakemake's code trigger is on.
    """
    script_mtime = Path(script).stat().st_mtime if script is not None else None
    found = []
    for key, record_path, identity in runs:
        record_path = Path(record_path)
        if not record_path.is_file():
            continue
        if compare_settings:
            try:
                recorded = json.loads(record_path.read_text()).get("identity")
            except (OSError, ValueError):
                recorded = None
            if recorded is not None:
                changes = identity_changes(recorded, identity)
                if changes:
                    detail = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items())
                    found.append(Remeasure(key, "settings", detail))
                    continue
        if script_mtime is not None and record_path.stat().st_mtime < script_mtime:
            found.append(Remeasure(key, "code", f"{script} is newer than the run"))
    return found


def summary(remeasures: list[Remeasure], total_existing: int) -> str | None:
    """The warning shown before the DAG runs (None when nothing will be re-measured)."""
    if not remeasures:
        return None
    settings = [r for r in remeasures if r.cause == "settings"]
    code = [r for r in remeasures if r.cause == "code"]
    lines = [
        f"{len(remeasures)} of {total_existing} existing measured runs will be measured again:"
    ]
    if settings:
        details = sorted({r.detail for r in settings})
        lines.append(f"  - {len(settings)} because their measurement settings changed:")
        lines += [f"      {detail}" for detail in details[:5]]
        if len(details) > 5:
            lines.append(f"      ... and {len(details) - 5} more distinct changes")
    if code:
        lines.append(
            f"  - {len(code)} because the measure rule's script changed after they were made "
            f"({code[0].detail})"
        )
    lines += [
        "  Nothing is lost: each replaced run is moved to results/superseded/ with the reason.",
        "  To keep them as they are instead: put the old settings back, or add "
        "`--rerun-triggers mtime input software-env` (ignores changed settings and code), or "
        "`--touch` to mark what exists as up to date; `-n` shows the plan without running it.",
    ]
    return "\n".join(lines)
