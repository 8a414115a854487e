"""Merge measured runs into one table (one row per run); list failed and superseded attempts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import polars as pl

from serving_energy.serving.validity import ValidityThresholds, evaluate
from serving_energy.study.layout import ResultsLayout
from serving_energy.study.vocabulary import Configuration

CONTRACT_COLUMNS = (
    "model", "size_category", "engine", "provider", "configuration", "rep",
    "energy_cpu_j", "energy_gpu_j", "energy_global_j", "duration_s", "cpu_usage_pct",
    "ram_usage_pct", "gpu_usage_pct", "gpu_mem_util_pct", "gpu_mem_used_pct",
    "n_requests", "n_failed", "new_tokens",
)  # fmt: skip
RUN_KEYS = (
    "model", "engine", "provider", "configuration", "configuration_id", "rep",
    "n_requests", "n_failed", "new_tokens", "standin", "load_duration_s", "threads", "device",
    "started_at", "finished_at", "config_sha256",
)  # fmt: skip
# A run's decode speed against its device's memory-bandwidth bound (roofline.run_roofline); a
# model whose weights stay in the cache has no bound (roofline_cache_resident, fraction null).
ROOFLINE_COLUMNS = (
    "tokens_per_s", "roofline_fraction", "roofline_bound_tokens_per_s",
    "roofline_read_bandwidth_gb_s", "roofline_weight_bytes_per_token", "roofline_cache_resident",
)  # fmt: skip
# What the study's config says about each model (size category, parameters, ...): taken from the
# config at merge time, so correcting a description re-merges instead of re-measuring.
DESCRIPTION_COLUMNS = (
    "size_category", "parameters", "affiliation", "release", "humaneval_pass_at_1_pct",
)  # fmt: skip


def run_row(
    run: dict, description: Mapping | None = None, thresholds: ValidityThresholds | None = None
) -> dict:
    """The flat table row of one run.json: identity, counts, every scalar metric, provenance,
    and the validity verdict under the study's current ``thresholds``."""
    row = {key: run.get(key) for key in RUN_KEYS}
    description = description or {}
    row.update({column: description.get(column, run.get(column)) for column in DESCRIPTION_COLUMNS})
    metrics = run.get("metrics", {})
    # Per-domain and cross-check details ("energy_cpu_domains_j[package-0]") depend on the
    # machine's sensors; they stay in run.json rather than making sparse columns here.
    row.update(
        {key: value for key, value in metrics.items() if _is_scalar(value) and "[" not in key}
    )
    for column in CONTRACT_COLUMNS:
        row.setdefault(column, None)
    row.update(_validity(run, metrics, thresholds or ValidityThresholds()))
    roofline = run.get("roofline") or {}
    row.update({key: roofline.get(key) for key in ROOFLINE_COLUMNS})
    machine = run.get("machine", {})
    gpus = machine.get("gpus") or []
    row.update(
        equivalence_status=run.get("equivalence", {}).get("status"),
        hostname=machine.get("hostname"),
        cpu_model=machine.get("cpu_model"),
        gpu_name=gpus[0]["name"] if gpus else None,
        git_commit=machine.get("git_commit"),
        cooldown_waited_s=(run.get("cooldown") or {}).get("waited_s"),
    )
    return row


def _validity(run: dict, metrics: Mapping, thresholds: ValidityThresholds) -> dict:
    quantities = (run.get("validity") or {}).get("quantities")
    if quantities is None:  # a run made before the gates existed: its window flags only
        valid = bool(metrics.get("valid", True))
        reasons = None if valid else "meter window: flagged (see run.json metrics)"
    else:
        verdict = evaluate(quantities, thresholds)
        valid, reasons = verdict.valid, "; ".join(verdict.reasons) or None
    return {"valid": valid, "invalid_reasons": reasons}


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def merge_runs(
    run_paths: Iterable[Path],
    models: Mapping[str, Mapping] | None = None,
    thresholds: ValidityThresholds | None = None,
) -> pl.DataFrame:
    """One row per run; ``models`` gives each model's description from the study's config."""
    models = models or {}
    rows = []
    for path in run_paths:
        run = json.loads(Path(path).read_text())
        if run.get("status") != "ok":
            raise ValueError(
                f"{path}: status {run.get('status')!r}; only complete runs belong here"
            )
        rows.append(run_row(run, models.get(run.get("model")), thresholds))
    if not rows:
        raise ValueError("no runs to merge")
    frame = pl.DataFrame(rows, infer_schema_length=None)
    leading = [column for column in CONTRACT_COLUMNS if column in frame.columns]
    rest = [column for column in frame.columns if column not in leading]
    return frame.select(leading + rest).sort("model", "provider", "engine", "rep")


FAILED_SCHEMA = {
    "model": pl.String, "configuration": pl.String, "rep": pl.Int64, "attempt": pl.String,
    "status": pl.String, "started_at": pl.String, "hostname": pl.String,
    "slurm_job_id": pl.String, "n_requests": pl.Int64, "n_failed": pl.Int64, "reason": pl.String,
    "folder": pl.String,
}  # fmt: skip


def failed_attempts(layout: ResultsLayout) -> pl.DataFrame:
    """Every failed, interrupted or unfinished attempt with its reason (empty table if none)."""
    rows = []
    for path in layout.failure_records():
        record = json.loads(path.read_text())
        attempt = record.get("attempt") or record  # an unfinished attempt's record is flat
        rows.append(
            {
                "model": record.get("model"),
                "configuration": record.get("configuration"),
                "rep": record.get("rep"),
                "attempt": path.parent.name,
                "status": record.get("status"),
                "started_at": attempt.get("started_at") or record.get("started_at"),
                "hostname": attempt.get("hostname"),
                "slurm_job_id": attempt.get("slurm_job_id"),
                "n_requests": record.get("n_requests"),
                "n_failed": record.get("n_failed"),
                "reason": record.get("failure"),
                "folder": path.parent.as_posix(),
            }
        )
    return pl.DataFrame(rows, schema=FAILED_SCHEMA)


SUPERSEDED_SCHEMA = {
    "model": pl.String, "configuration": pl.String, "rep": pl.Int64, "previous_started_at": pl.String,
    "superseded_at": pl.String, "reason": pl.String, "folder": pl.String,
}  # fmt: skip


def superseded_runs(layout: ResultsLayout) -> pl.DataFrame:
    """Every complete run that a later measurement replaced, where it is kept and why."""
    rows = []
    for path in layout.superseded_records():
        record = json.loads(path.read_text())
        rows.append(
            {
                **{key: record.get(key) for key in SUPERSEDED_SCHEMA if key != "folder"},
                "folder": path.parent.as_posix(),
            }
        )
    return pl.DataFrame(rows, schema=SUPERSEDED_SCHEMA)


CHECK_IDENTITY = ("model", "engine", "provider")


def equivalence_table(check_paths: Iterable[Path]) -> pl.DataFrame:
    """One row per equivalence check: its model and configuration id (as the check records them),
    then every scalar of check.json."""
    rows = []
    for path in check_paths:
        check = json.loads(Path(path).read_text())
        missing = [key for key in CHECK_IDENTITY if key not in check]
        if missing:
            raise ValueError(
                f"{path}: the check does not say which {' and '.join(missing)} it belongs to "
                "(made before checks recorded it); run the workflow again to redo it"
            )
        rows.append(
            {
                "model": check["model"],
                "configuration_id": Configuration(check["engine"], check["provider"]).id,
                **{key: value for key, value in check.items() if _is_scalar(value)},
            }
        )
    return (
        pl.DataFrame(rows, infer_schema_length=None)
        if rows
        else pl.DataFrame(
            schema={"model": pl.String, "configuration_id": pl.String, "passed": pl.Boolean}
        )
    )
