"""Snakemake entry: Tables 4 (CPU) and 5 (CUDA) and the saving ranges quoted in the text."""

from pathlib import Path

import polars as pl

from serving_energy.analysis.selection import prepare_analysis
from serving_energy.analysis.tables import (
    PAPER_TABLES,
    all_saving_ranges,
    write_saving_sentences,
    write_size_category_table,
)
from serving_energy.core.logs import log_to

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    output, params = snakemake.output, snakemake.params  # noqa: F821
    analysis = prepare_analysis(pl.read_parquet(snakemake.input[0]), **params.selection)
    runs, method, labels = analysis.runs, analysis.method, analysis.labels
    for name, (table, caption, label) in PAPER_TABLES.items():
        write_size_category_table(
            table(runs, method), Path(output[name]), Path(output[f"{name}_tex"]),
            caption=caption, label=label, labels=labels,
        )  # fmt: skip
    ranges = all_saving_ranges(runs, method=method)
    labels.with_columns(ranges).write_csv(output.savings)
    write_saving_sentences(ranges, Path(output.savings_text), method, labels)
    log.info("method %s: tables written; %d saving ranges", method.name, ranges.height)
