"""Snakemake entry: Tables 4 (CPU) and 5 (CUDA) and the saving ranges quoted in the text."""

from pathlib import Path

import polars as pl

from serving_energy.analysis.selection import prepare_analysis
from serving_energy.analysis.tables import (
    all_saving_ranges,
    table4,
    table5,
    write_saving_sentences,
    write_size_category_table,
)
from serving_energy.core.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    output, params = snakemake.output, snakemake.params  # noqa: F821
    analysis = prepare_analysis(
        pl.read_parquet(snakemake.input[0]),  # noqa: F821
        method=params.method,
        configurations=params.configurations,
        invalid_runs=params.invalid_runs,
    )
    runs, method, labels = analysis.runs, analysis.method, analysis.labels
    write_size_category_table(
        table4(runs, method), Path(output.table4), Path(output.table4_tex),
        caption="CPU provider: global energy [J] and execution time [s], median over "
        "repetitions, mean over the models of each size category",
        label="tab:cpu",
        labels=labels,
    )  # fmt: skip
    write_size_category_table(
        table5(runs, method), Path(output.table5), Path(output.table5_tex),
        caption="CUDA provider: CPU, GPU and global energy [J] and execution time [s], median "
        "over repetitions, mean over the models of each size category",
        label="tab:cuda",
        labels=labels,
    )  # fmt: skip
    ranges = all_saving_ranges(runs, method=method)
    labels.with_columns(ranges).write_csv(output.savings)
    write_saving_sentences(ranges, Path(output.savings_text), method, labels)
    log.info("method %s: tables written; %d saving ranges", method.name, ranges.height)
