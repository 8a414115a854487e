"""Snakemake entry: Tables 4 (CPU) and 5 (CUDA) and the saving ranges quoted in the text."""

from pathlib import Path

import polars as pl

from serving_energy.logs import log_to
from serving_energy.tables import all_saving_ranges, table4, table5, write_size_category_table

with log_to(snakemake.log[0]) as log:  # noqa: F821 (injected by Snakemake)
    output = snakemake.output  # noqa: F821
    runs = pl.read_parquet(snakemake.input[0])  # noqa: F821
    write_size_category_table(
        table4(runs), Path(output.table4), Path(output.table4_tex),
        caption="CPU provider: global energy [J] and execution time [s], median over "
        "repetitions, mean over the models of each size category",
        label="tab:cpu",
    )  # fmt: skip
    write_size_category_table(
        table5(runs), Path(output.table5), Path(output.table5_tex),
        caption="CUDA provider: CPU, GPU and global energy [J] and execution time [s], median "
        "over repetitions, mean over the models of each size category",
        label="tab:cuda",
    )  # fmt: skip
    ranges = all_saving_ranges(runs)
    ranges.write_csv(output.savings)
    Path(output.savings_text).write_text(
        "# Savings against <TORCH, provider>\n\n"
        + "".join(f"- {sentence}\n" for sentence in ranges["sentence"].to_list())
    )
    log.info("tables written; %d saving ranges", ranges.height)
