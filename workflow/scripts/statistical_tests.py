"""Snakemake entry: the statistical tests per model and metric, as tidy tables and LaTeX."""

from pathlib import Path

import polars as pl

from serving_energy.analysis.selection import prepare_analysis
from serving_energy.analysis.stats import analyse_runs, write_posthoc_latex, write_tests_latex
from serving_energy.core.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    output, params = snakemake.output, snakemake.params  # noqa: F821
    analysis = prepare_analysis(pl.read_parquet(snakemake.input[0]), **params.selection)
    result = analyse_runs(analysis.runs, alpha=params.alpha, method=analysis.method)
    labels = analysis.labels
    labels.with_columns(result.tests).write_csv(output.tests)
    labels.with_columns(result.posthoc).write_csv(output.posthoc)
    write_tests_latex(
        result.tests,
        Path(output.tests_tex),
        caption=labels.caption("Omnibus tests per model, configuration group and metric"),
    )
    write_posthoc_latex(
        result.posthoc,
        Path(output.posthoc_tex),
        caption=labels.caption("Post-hoc comparisons with effect sizes and savings"),
    )
    untestable = result.tests.filter(pl.col("decision") == "not testable").height
    log.info(
        "method %s: %d runs analysed, %d left out; %d tests (%d not testable), %d post-hoc pairs",
        analysis.method.name,
        analysis.runs.height,
        analysis.selection.excluded.height,
        result.tests.height,
        untestable,
        result.posthoc.height,
    )
