"""Merge measured runs into one table (one row per run); list failed attempts beside it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

CONTRACT_COLUMNS = (
    "model", "size_category", "engine", "provider", "configuration", "rep",
    "energy_cpu_j", "energy_gpu_j", "energy_global_j", "duration_s", "cpu_usage_pct",
    "ram_usage_pct", "gpu_usage_pct", "gpu_mem_util_pct", "gpu_mem_used_pct",
    "n_requests", "n_failed", "new_tokens",
)  # fmt: skip
RUN_KEYS = (
    "model", "size_category", "engine", "provider", "configuration", "configuration_id", "rep",
    "n_requests", "n_failed", "new_tokens", "standin", "load_duration_s", "threads", "device",
    "started_at", "finished_at", "config_sha256",
)  # fmt: skip


def run_row(run: dict) -> dict:
    """The flat table row of one run.json: identity, counts, every scalar metric, provenance."""
    row = {key: run.get(key) for key in RUN_KEYS}
    metrics = run.get("metrics", {})
    # Per-domain and cross-check details ("energy_cpu_domains_j[package-0]") depend on the
    # machine's sensors; they stay in run.json rather than making sparse columns here.
    row.update(
        {key: value for key, value in metrics.items() if _is_scalar(value) and "[" not in key}
    )
    for column in CONTRACT_COLUMNS:
        row.setdefault(column, None)
    machine = run.get("machine", {})
    gpus = machine.get("gpus") or []
    row.update(
        equivalence_status=run.get("equivalence", {}).get("status"),
        hostname=machine.get("hostname"),
        cpu_model=machine.get("cpu_model"),
        gpu_name=gpus[0]["name"] if gpus else None,
        git_commit=machine.get("git_commit"),
        cooldown_waited_s=run.get("cooldown", {}).get("waited_s"),
    )
    return row


def _is_scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def merge_runs(run_paths: Iterable[Path]) -> pl.DataFrame:
    rows = []
    for path in run_paths:
        run = json.loads(Path(path).read_text())
        if run.get("status") != "ok":
            raise ValueError(
                f"{path}: status {run.get('status')!r}; only complete runs belong here"
            )
        rows.append(run_row(run))
    if not rows:
        raise ValueError("no runs to merge")
    frame = pl.DataFrame(rows, infer_schema_length=None)
    leading = [column for column in CONTRACT_COLUMNS if column in frame.columns]
    rest = [column for column in frame.columns if column not in leading]
    return frame.select(leading + rest).sort("model", "provider", "engine", "rep")


FAILED_SCHEMA = {
    "model": pl.String, "configuration": pl.String, "rep": pl.Int64, "attempt": pl.String,
    "started_at": pl.String, "n_requests": pl.Int64, "n_failed": pl.Int64, "reason": pl.String,
    "folder": pl.String,
}  # fmt: skip


def failed_attempts(failed_root: Path) -> pl.DataFrame:
    """Every failed attempt kept under ``failed_root`` with its reason (empty table if none)."""
    rows = []
    for path in sorted(Path(failed_root).glob("*/*/rep*/*/failure.json")):
        run = json.loads(path.read_text())
        rows.append(
            {
                "model": run.get("model"),
                "configuration": run.get("configuration"),
                "rep": run.get("rep"),
                "attempt": path.parent.name,
                "started_at": run.get("started_at"),
                "n_requests": run.get("n_requests"),
                "n_failed": run.get("n_failed"),
                "reason": run.get("failure"),
                "folder": str(path.parent),
            }
        )
    return pl.DataFrame(rows, schema=FAILED_SCHEMA)


def equivalence_table(check_paths: Iterable[Path]) -> pl.DataFrame:
    rows = []
    for path in check_paths:
        check = json.loads(Path(path).read_text())
        parts = Path(path).parts
        rows.append(
            {
                "model": parts[-3],
                "configuration_id": parts[-2],
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
