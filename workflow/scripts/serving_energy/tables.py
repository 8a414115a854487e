"""The paper's Tables 4 and 5 and the saving ranges quoted in its text.

Aggregation order (as the paper): first the median over the repetitions of each
(model, configuration), then the arithmetic mean of those medians over the models of a size
category. The ``"all"`` row is the mean over *all models'* medians (every model weighs the same),
not the mean of the three category means (which would weigh a model of a small category more).
A model without runs of a configuration simply does not enter that configuration's mean;
``n_models`` says how many did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from serving_energy.latex import Column, write_booktabs
from serving_energy.stats import (
    CONFIGURATION_ORDER,
    METRICS_BY_COLUMN,
    PROVIDERS,
    baseline_configuration,
    order_configurations,
    saving_pct,
)

ALL_CATEGORIES = "all"

TABLE4_METRICS: tuple[str, ...] = ("energy_global_j", "duration_s")
TABLE5_METRICS: tuple[str, ...] = ("energy_cpu_j", "energy_gpu_j", "energy_global_j", "duration_s")


def _configuration_rank() -> pl.Expr:
    # Unknown configurations sort after the paper's, so a new engine does not vanish.
    order = {c: i for i, c in enumerate(CONFIGURATION_ORDER)}
    return pl.col("configuration").replace_strict(order, default=len(order), return_dtype=pl.Int64)


def medians_per_model(runs: pl.DataFrame, metric_columns: Sequence[str]) -> pl.DataFrame:
    """One row per (model, configuration): the median of each metric over repetitions.

    Columns: model, size_category, provider, configuration, n_reps, <metric columns>.
    """
    return (
        runs.group_by("model", "size_category", "provider", "configuration")
        .agg(pl.len().alias("n_reps"), *[pl.col(c).median() for c in metric_columns])
        .sort("model", _configuration_rank(), "configuration")
    )


def size_category_table(
    runs: pl.DataFrame, provider: str, metric_columns: Sequence[str]
) -> pl.DataFrame:
    """Mean over models of the per-model medians, per size category and configuration.

    Columns: size_category (str: "1", "2", "3", ..., "all"), configuration, n_models,
    <metric columns>. Rows: categories in ascending order then "all"; configurations in the
    paper's order.
    """
    medians = medians_per_model(runs.filter(pl.col("provider") == provider), metric_columns)
    means = [pl.col(c).mean() for c in metric_columns]
    per_category = medians.group_by("size_category", "configuration").agg(
        pl.col("model").n_unique().alias("n_models"), *means
    )
    overall = medians.group_by("configuration").agg(
        pl.col("model").n_unique().alias("n_models"), *means
    )
    per_category = per_category.with_columns(pl.col("size_category").cast(pl.Int64))
    table = pl.concat(
        [
            per_category.sort("size_category").with_columns(pl.col("size_category").cast(pl.Utf8)),
            overall.with_columns(pl.lit(ALL_CATEGORIES).alias("size_category")),
        ],
        how="diagonal",
    )
    category_rank = (pl.col("size_category") == ALL_CATEGORIES).cast(pl.Int64)
    numeric_category = pl.col("size_category").cast(pl.Int64, strict=False)
    return table.sort(
        category_rank, numeric_category, _configuration_rank(), "configuration"
    ).select("size_category", "configuration", pl.col("n_models").cast(pl.Int64), *metric_columns)


def table4(runs: pl.DataFrame) -> pl.DataFrame:
    """CPU provider: global energy [J] and execution time [s] per size category."""
    return size_category_table(runs, "cpu", TABLE4_METRICS)


def table5(runs: pl.DataFrame) -> pl.DataFrame:
    """CUDA provider: CPU, GPU and global energy [J] and execution time [s] per size category."""
    return size_category_table(runs, "cuda", TABLE5_METRICS)


def _metric_header(column: str) -> str:
    metric = METRICS_BY_COLUMN.get(column)
    return metric.axis_label if metric else column


def write_size_category_table(
    table: pl.DataFrame,
    csv_path: Path,
    tex_path: Path,
    *,
    caption: str,
    label: str,
) -> list[Path]:
    """Write a Table 4/5 frame as CSV (all digits) and booktabs LaTeX (two decimals)."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    table.write_csv(csv_path)
    metric_columns = [c for c in table.columns if c not in ("size_category", "configuration")]
    metric_columns.remove("n_models")
    columns = [
        Column("size_category", "Size category", align="l"),
        Column("configuration", "Configuration", align="l"),
        Column("n_models", "Models", number_format="{:d}"),
        *[Column(c, _metric_header(c)) for c in metric_columns],
    ]
    write_booktabs(table, tex_path, columns, caption=caption, label=label, group_by="size_category")
    return [csv_path, tex_path]


# ---------------------------------------------------------------------------------------------
# Saving ranges ("energy savings from 37.99 % up to 89.16 %")


@dataclass(frozen=True)
class SavingRange:
    provider: str
    metric: str
    configuration: str
    baseline: str
    n_models: int
    min_saving_pct: float
    min_saving_model: str
    max_saving_pct: float
    max_saving_model: str
    sentence: str


def model_savings(
    runs: pl.DataFrame, provider: str, metric: str, baseline: str | None = None
) -> pl.DataFrame:
    """Per model and configuration: the saving against the baseline, from medians.

    saving_pct = (median_baseline - median_configuration) / median_baseline * 100, so positive
    values mean the configuration uses less than the baseline (default ``<TORCH, provider>``).
    Columns: model, size_category, provider, metric, configuration, baseline, median,
    baseline_median, saving_pct. Models without baseline runs are left out.
    """
    baseline = baseline or baseline_configuration(provider)
    medians = medians_per_model(runs.filter(pl.col("provider") == provider), [metric])
    base = medians.filter(pl.col("configuration") == baseline).select(
        "model", pl.col(metric).alias("baseline_median")
    )
    joined = (
        medians.filter(pl.col("configuration") != baseline)
        .join(base, on="model", how="inner")
        .rename({metric: "median"})
    )
    savings = [
        saving_pct(m, b) if m is not None and b is not None else None
        for m, b in zip(joined["median"], joined["baseline_median"], strict=True)
    ]
    return joined.with_columns(
        pl.lit(metric).alias("metric"),
        pl.lit(baseline).alias("baseline"),
        pl.Series("saving_pct", savings, dtype=pl.Float64),
    ).select(
        "model",
        "size_category",
        "provider",
        "metric",
        "configuration",
        "baseline",
        "median",
        "baseline_median",
        "saving_pct",
    )


def saving_sentence(
    metric: str, configuration: str, baseline: str, low_pct: float, high_pct: float
) -> str:
    """The paper's wording; a range that crosses zero is called a change, not a saving."""
    what = METRICS_BY_COLUMN[metric].label.lower() if metric in METRICS_BY_COLUMN else metric
    if low_pct >= 0:
        return (
            f"{configuration} against {baseline}: {what} savings from {low_pct:.2f} % "
            f"up to {high_pct:.2f} %"
        )
    if high_pct <= 0:
        return (
            f"{configuration} against {baseline}: {what} increases from {-high_pct:.2f} % "
            f"up to {-low_pct:.2f} %"
        )
    return (
        f"{configuration} against {baseline}: {what} changes from {low_pct:.2f} % "
        f"to {high_pct:.2f} % (negative values are increases)"
    )


SAVING_RANGE_SCHEMA: dict[str, pl.DataType] = {
    "provider": pl.Utf8,
    "metric": pl.Utf8,
    "configuration": pl.Utf8,
    "baseline": pl.Utf8,
    "n_models": pl.Int64,
    "min_saving_pct": pl.Float64,
    "min_saving_model": pl.Utf8,
    "max_saving_pct": pl.Float64,
    "max_saving_model": pl.Utf8,
    "sentence": pl.Utf8,
}


def saving_ranges(
    runs: pl.DataFrame,
    provider: str,
    metric: str = "energy_global_j",
    baseline: str | None = None,
) -> pl.DataFrame:
    """Per configuration of the provider: the smallest and largest per-model saving.

    Columns: see ``SAVING_RANGE_SCHEMA``; ``sentence`` holds the text the paper quotes.
    """
    baseline = baseline or baseline_configuration(provider)
    savings = model_savings(runs, provider, metric, baseline).drop_nulls("saving_pct")
    rows: list[SavingRange] = []
    for configuration in order_configurations(savings["configuration"]):
        of_config = savings.filter(pl.col("configuration") == configuration).sort("saving_pct")
        low, high = of_config.row(0, named=True), of_config.row(-1, named=True)
        rows.append(
            SavingRange(
                provider=provider,
                metric=metric,
                configuration=configuration,
                baseline=baseline,
                n_models=of_config.height,
                min_saving_pct=low["saving_pct"],
                min_saving_model=low["model"],
                max_saving_pct=high["saving_pct"],
                max_saving_model=high["model"],
                sentence=saving_sentence(
                    metric, configuration, baseline, low["saving_pct"], high["saving_pct"]
                ),
            )
        )
    return pl.DataFrame([r.__dict__ for r in rows], schema=SAVING_RANGE_SCHEMA, orient="row")


SAVING_METRICS: tuple[str, ...] = ("energy_global_j", "duration_s")


def all_saving_ranges(runs: pl.DataFrame, metrics: Sequence[str] = SAVING_METRICS) -> pl.DataFrame:
    """``saving_ranges`` for every provider with runs and every metric, against the provider's
    ``<TORCH, ...>`` baseline, in one table (same columns)."""
    present = set(runs["provider"].unique().to_list())
    frames = [
        saving_ranges(runs, provider, metric)
        for provider in PROVIDERS
        if provider in present
        for metric in metrics
        if metric in runs.columns
    ]
    if not frames:
        return pl.DataFrame(schema=SAVING_RANGE_SCHEMA)
    return pl.concat(frames)


def write_saving_sentences(ranges: pl.DataFrame, path: Path) -> Path:
    """The sentences as a Markdown list, one per configuration and metric."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Savings against the TORCH baseline of each provider", ""]
    definition = (
        "Per model: (median of the baseline - median of the configuration) / median of the "
        "baseline x 100, medians over repetitions; the range runs over the models."
    )
    lines += [definition, ""]
    lines += [
        f"- {sentence} ({n} models)"
        for sentence, n in ranges.select("sentence", "n_models").iter_rows()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_saving_ranges(ranges: pl.DataFrame, csv_path: Path, tex_path: Path) -> list[Path]:
    """The ranges as CSV and as a booktabs table (configuration, baseline, models, min, max)."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    ranges.write_csv(csv_path)
    columns = [
        Column("metric", "Metric", align="l"),
        Column("configuration", "Configuration", align="l"),
        Column("baseline", "Baseline", align="l"),
        Column("n_models", "Models", number_format="{:d}"),
        Column("min_saving_pct", "Min. saving [%]"),
        Column("min_saving_model", "at model", align="l"),
        Column("max_saving_pct", "Max. saving [%]"),
        Column("max_saving_model", "at model", align="l"),
    ]
    write_booktabs(ranges, tex_path, columns, group_by="metric")
    return [csv_path, tex_path]
