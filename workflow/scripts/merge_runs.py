"""Snakemake entry: one table of all runs, one of failed attempts, one of equivalence checks."""

from pathlib import Path

from serving_energy.logs import log_to
from serving_energy.merge import equivalence_table, failed_attempts, merge_runs

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    inputs, outputs = snakemake.input, snakemake.output  # noqa: F821
    runs = merge_runs(Path(path) for path in inputs.runs)
    runs.write_parquet(outputs.parquet)
    runs.write_csv(outputs.csv)
    failed = failed_attempts(Path(snakemake.params.failed_root))  # noqa: F821
    failed.write_csv(outputs.failed)
    equivalence_table(Path(path) for path in inputs.checks).write_csv(outputs.checks)
    log.info("%d runs merged; %d failed attempts listed", runs.height, failed.height)
