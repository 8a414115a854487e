"""Snakemake entry: results/README.md, results/SHA256SUMS and the archive for deposit."""

import json
from pathlib import Path

import polars as pl

from serving_energy.analysis.package import PackageInputs, write_package
from serving_energy.core.logs import log_to
from serving_energy.core.versions import library_versions
from serving_energy.study.vocabulary import RECORDED_PACKAGES

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    params, inputs_, output = snakemake.params, snakemake.input, snakemake.output  # noqa: F821
    inputs = PackageInputs(
        results_dir=Path(output.readme).parent,
        study=params.summary,
        config=json.loads(json.dumps(dict(params.config), default=str)),
        command=params.command,
        runs=pl.read_parquet(inputs_.runs),
        failed=pl.read_csv(inputs_.failed, infer_schema_length=None),
        equivalence=pl.read_csv(inputs_.equivalence, infer_schema_length=None),
        excluded=pl.read_csv(inputs_.excluded, infer_schema_length=None),
        analysis_method=params.config["analysis"]["method"],
        software=library_versions(RECORDED_PACKAGES),
        planned_runs=params.planned_runs,
    )
    files = write_package(
        inputs,
        Path(output.readme),
        Path(output.checksums),
        Path(output.archive),
        exclude=[Path(snakemake.log[0])],  # noqa: F821
    )
    log.info("package: %d files checksummed and archived in %s", len(files), output.archive)
