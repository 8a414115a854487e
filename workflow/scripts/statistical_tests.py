"""Snakemake entry: the paper's tests per model and metric, as tidy tables and LaTeX."""

from pathlib import Path

import polars as pl

from serving_energy.logs import log_to
from serving_energy.stats import analyse_runs, write_posthoc_latex, write_tests_latex

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    output = snakemake.output  # noqa: F821
    result = analyse_runs(pl.read_parquet(snakemake.input[0]), alpha=snakemake.params.alpha)  # noqa: F821
    result.tests.write_csv(output.tests)
    result.posthoc.write_csv(output.posthoc)
    write_tests_latex(result.tests, Path(output.tests_tex))
    write_posthoc_latex(result.posthoc, Path(output.posthoc_tex))
    untestable = result.tests.filter(pl.col("decision") == "not testable").height
    log.info(
        "%d tests (%d not testable), %d post-hoc pairs",
        result.tests.height,
        untestable,
        result.posthoc.height,
    )
