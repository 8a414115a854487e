"""Snakemake entry: the study's plan (disk, memory, wall time), before or while it runs."""

import json
from pathlib import Path

from serving_energy.core.io import write_atomic_text
from serving_energy.core.logs import log_to
from serving_energy.core.progress import say
from serving_energy.study.footprint import machine_memory_mb
from serving_energy.study.plan import format_duration, study_plan, to_markdown
from serving_energy.study.vocabulary import Configuration


class StudyDoesNotFit(RuntimeError):
    """The study's largest job or its artefacts exceed this machine; the message has the numbers."""


with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    memory_mb = machine_memory_mb()
    plan = study_plan(
        snakemake.config,  # noqa: F821
        memory_mb * 1_000_000 if memory_mb else None,
        configurations=[Configuration(*pair) for pair in snakemake.params.configurations],  # noqa: F821
        cluster_profile=Path(snakemake.params.cluster_profile),  # noqa: F821
    )
    record, markdown = plan.to_dict(), to_markdown(plan)
    log.info("the plan:\n%s", markdown)
    out_json, out_md = Path(snakemake.output.json), Path(snakemake.output.md)  # noqa: F821
    # Snakemake removes a failed job's outputs: a refused plan is kept beside them instead.
    refused_json, refused_md = out_json.with_name("refused.json"), out_md.with_name("refused.md")
    for stale in (refused_json, refused_md):
        stale.unlink(missing_ok=True)
    write_atomic_text(
        refused_json if plan.problems else out_json, json.dumps(record, indent=1) + "\n"
    )
    write_atomic_text(refused_md if plan.problems else out_md, markdown)
    wall, disk = record["wall"], record["disk"]
    say(
        f"plan: {record['runs_total']} runs ({record['runs_done']} done), "
        f"{format_duration(wall['total_s'])} of wall time ({format_duration(wall['left_s'])} left), "
        f"{disk['peak_disk_bytes'] / 1e9:.1f} GB of disk at the peak; "
        f"{refused_md if plan.problems else out_md}"
    )
    if plan.problems:
        raise StudyDoesNotFit(
            "the study does not fit this machine: "
            + "; ".join(plan.problems)
            + ". What would make it fit: "
            + "; ".join(plan.remedies)
            + f". The whole plan: {refused_md} ({refused_json})."
        )
