"""The paper's Tables 4 and 5 and the saving ranges quoted in its text.

Aggregation order (as the paper): first the median over the repetitions of each
(model, configuration), then the arithmetic mean of those medians over the models of a size
category. The last section has one row per configuration: under method ``extended`` the ``"all"``
row, the mean over *all models'* medians (every model weighs the same); under ``paper`` the
``"1,2,3"`` row the paper prints ("mean values for each serving configuration"), the mean of the
category means (a model of a category with fewer models weighs more; with four models in each
of the paper's categories the two agree but for rounding). A model without runs of a
configuration simply does not enter that configuration's mean; ``n_models`` says how many did.

Method ``paper`` prints what the authors printed: each model's median rounded to 2 decimals
before the mean, each mean rounded to 2 decimals, the ``"1,2,3"`` rows, and Table 4's global
energy = CPU energy (``AnalysisMethod.presented_runs``). Savings: see ``all_saving_ranges``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.latex import Column, write_booktabs
from serving_energy.analysis.method import EXTENDED, AnalysisMethod
from serving_energy.analysis.metrics import METRICS_BY_COLUMN
from serving_energy.analysis.stats import saving_pct
from serving_energy.study.vocabulary import (
    CONFIGURATION_ORDER,
    PROVIDER_LABELS,
    PROVIDERS,
    baseline_label,
    order_configurations,
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


def _rounded_mean(values: Sequence[float], decimals: int) -> float | None:
    """The authors' arithmetic: each value rounded (Python's ``round``), the exactly rounded sum
    (pandas' compensated sum gives the same for a handful of values) over the count, rounded
    again. A plain left-to-right sum changes the printed digit of 2 of the paper's 30 cells."""
    rounded = [round(v, decimals) for v in values if v is not None and not math.isnan(v)]
    if not rounded:
        return None
    return round(math.fsum(rounded) / len(rounded), decimals)


def _mean_table(
    medians: pl.DataFrame,
    keys: Sequence[str],
    metric_columns: Sequence[str],
    round_medians_to: int | None,
) -> pl.DataFrame:
    n_models = pl.col("model").n_unique().alias("n_models")
    if round_medians_to is None:
        return medians.group_by(*keys).agg(n_models, *[pl.col(c).mean() for c in metric_columns])
    rows = []
    for key, group in medians.group_by(*keys, maintain_order=True):
        row: dict[str, object] = dict(zip(keys, key, strict=True))
        row["n_models"] = group["model"].n_unique()
        for column in metric_columns:
            row[column] = _rounded_mean(group[column].to_list(), round_medians_to)
        rows.append(row)
    schema = {
        **{k: medians.schema[k] for k in keys},
        "n_models": pl.UInt32(),
        **{c: pl.Float64() for c in metric_columns},
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def size_category_table(
    runs: pl.DataFrame,
    provider: str,
    metric_columns: Sequence[str],
    *,
    round_medians_to: int | None = None,
    overall_row: str | None = "models",
) -> pl.DataFrame:
    """Mean over models of the per-model medians, per size category and configuration.

    Columns: size_category (str: "1", "2", "3", ..., then the overall row's label), configuration,
    n_models, <metric columns>. Rows: categories in ascending order, then per configuration the
    overall row: ``"models"`` the mean over every model (label "all"), ``"categories"`` the mean
    of the category means (label: the categories, "1,2,3"; none with a single category, whose
    rows it would repeat), None none. Configurations in the
    paper's order. ``round_medians_to``: decimals each median and each mean are rounded to, as
    the paper's printed tables (None: every digit).
    """
    medians = medians_per_model(runs.filter(pl.col("provider") == provider), metric_columns)
    per_category = _mean_table(
        medians, ["size_category", "configuration"], metric_columns, round_medians_to
    ).with_columns(pl.col("size_category").cast(pl.Int64))
    categories = sorted(per_category["size_category"].unique().to_list())
    parts = [per_category.sort("size_category").with_columns(pl.col("size_category").cast(pl.Utf8))]
    overall_label = None
    if overall_row == "models":
        overall_label = ALL_CATEGORIES
        overall = _mean_table(medians, ["configuration"], metric_columns, round_medians_to)
        parts.append(overall.with_columns(pl.lit(overall_label).alias("size_category")))
    elif overall_row == "categories" and len(categories) > 1:  # one category: its own rows
        overall_label = ",".join(str(c) for c in categories)
        parts.append(
            _category_means(per_category, metric_columns, round_medians_to).with_columns(
                pl.lit(overall_label).alias("size_category")
            )
        )
    elif overall_row not in (None, "models", "categories"):
        raise ValueError(f"overall_row: {overall_row!r} is not 'models', 'categories' or None")
    table = pl.concat(parts, how="diagonal")
    category_rank = (pl.col("size_category") == (overall_label or "")).cast(pl.Int64)
    numeric_category = pl.col("size_category").cast(pl.Int64, strict=False)
    return table.sort(
        category_rank, numeric_category, _configuration_rank(), "configuration"
    ).select("size_category", "configuration", pl.col("n_models").cast(pl.Int64), *metric_columns)


def _category_means(
    per_category: pl.DataFrame, metric_columns: Sequence[str], round_to: int | None
) -> pl.DataFrame:
    """Per configuration, the mean of its category means (each already rounded where the
    method rounds, and the mean rounded again); n_models: the models behind them."""
    rows = []
    for (configuration,), group in per_category.group_by("configuration", maintain_order=True):
        row: dict[str, object] = {
            "configuration": configuration,
            "n_models": int(group["n_models"].sum()),
        }
        for column in metric_columns:
            values = [v for v in group[column].to_list() if v is not None and not math.isnan(v)]
            if round_to is None:
                row[column] = math.fsum(values) / len(values) if values else None
            else:
                row[column] = _rounded_mean(values, round_to)
        rows.append(row)
    schema = {
        "configuration": per_category.schema["configuration"],
        "n_models": pl.UInt32(),
        **{c: pl.Float64() for c in metric_columns},
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


# Beside the paper's columns, in the CSVs only (the LaTeX tables print the paper's): energy per
# generated token, and emissions where carbon is set. Never rounded: 0.004 J/token is no 0.00.
CSV_ONLY_COLUMNS: tuple[str, ...] = ("energy_per_token_j", "co2e_g")


def _paper_table(
    runs: pl.DataFrame, provider: str, metric_columns: Sequence[str], method: AnalysisMethod
) -> pl.DataFrame:
    presented = method.presented_runs(runs)
    table = size_category_table(
        presented,
        provider,
        metric_columns,
        round_medians_to=method.round_medians_to,
        overall_row=method.overall_row,
    )
    extras = [c for c in CSV_ONLY_COLUMNS if c in presented.columns]
    if not extras or table.is_empty():
        return table
    extra = size_category_table(presented, provider, extras, overall_row=method.overall_row)
    return table.join(
        extra.drop("n_models"), on=["size_category", "configuration"], how="left",
        maintain_order="left",
    )  # fmt: skip


def table4(runs: pl.DataFrame, method: AnalysisMethod = EXTENDED) -> pl.DataFrame:
    """CPU provider: global energy [J] and execution time [s] per size category (the paper's
    method: global energy = CPU energy, rounded medians, the "1,2,3" rows)."""
    return _paper_table(runs, "cpu", TABLE4_METRICS, method)


def table5(runs: pl.DataFrame, method: AnalysisMethod = EXTENDED) -> pl.DataFrame:
    """CUDA provider: CPU, GPU and global (per-run CPU + GPU) energy [J] and execution time [s]
    per size category."""
    return _paper_table(runs, "cuda", TABLE5_METRICS, method)


# How the workflow writes them: (table, caption, LaTeX label) by output name.
PAPER_TABLES = {
    "table4": (
        table4,
        "CPU provider: global energy [J] and execution time [s], median over repetitions, mean "
        "over the models of each size category",
        "tab:cpu",
    ),
    "table5": (
        table5,
        "CUDA provider: CPU, GPU and global energy [J] and execution time [s], median over "
        "repetitions, mean over the models of each size category",
        "tab:cuda",
    ),
}


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
    labels: DataLabels | None = None,
) -> list[Path]:
    """Write a Table 4/5 frame as CSV (the table's digits) and booktabs LaTeX (two decimals).

    With ``labels``, the CSV gets the ``analysis_method`` and ``note`` columns and the caption
    names the method and the data's caveats (estimated energy, stand-in models, ...)."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    metric_columns = [
        c
        for c in table.columns
        if c not in ("size_category", "configuration", "n_models", *CSV_ONLY_COLUMNS)
    ]
    if labels is not None:
        labels.with_columns(table).write_csv(csv_path)
        caption = labels.caption(caption)
    else:
        table.write_csv(csv_path)
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
    baseline = baseline or baseline_label(provider)
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
    baseline = baseline or baseline_label(provider)
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


def best_vs_worst_savings(runs: pl.DataFrame, provider: str, metric: str) -> pl.DataFrame:
    """Per model: its best (lowest median) and worst (highest median) configuration of the
    provider and the saving of the best against the worst, (1 - best / worst) x 100.

    This is how the authors computed the paper's saving ranges (``08_analysis_nov.ipynb``:
    min / max of each model's medians, the range over models). Models with fewer than two
    configurations are left out. Columns: model, best, worst, best_median, worst_median,
    saving_pct.
    """
    medians = medians_per_model(runs.filter(pl.col("provider") == provider), [metric])
    rows = []
    for (model,), of_model in medians.drop_nulls(metric).group_by("model", maintain_order=True):
        if of_model.height < 2:
            continue
        ordered = of_model.sort(metric, _configuration_rank())
        best, worst = ordered.row(0, named=True), ordered.row(-1, named=True)
        rows.append(
            {
                "model": model,
                "best": best["configuration"],
                "worst": worst["configuration"],
                "best_median": best[metric],
                "worst_median": worst[metric],
                "saving_pct": saving_pct(best[metric], worst[metric]),
            }
        )
    schema = {
        "model": pl.Utf8,
        "best": pl.Utf8,
        "worst": pl.Utf8,
        "best_median": pl.Float64,
        "worst_median": pl.Float64,
        "saving_pct": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row").drop_nulls("saving_pct").sort("model")


def _counted(configurations: Sequence[str]) -> str:
    counts = {c: configurations.count(c) for c in order_configurations(configurations)}
    return ", ".join(f"{c} for {n}" for c, n in counts.items())


def best_vs_worst_ranges(runs: pl.DataFrame, provider: str, metric: str) -> pl.DataFrame:
    """The paper's saving range of one provider and metric: the smallest and largest per-model
    saving of the best configuration against the worst (``best_vs_worst_savings``).

    One row (none without a model of two configurations); ``configuration`` and ``baseline``
    name the best and worst configurations (several, joined by " / ", when they differ between
    models, and then the sentence says which for how many models)."""
    savings = best_vs_worst_savings(runs, provider, metric).sort("saving_pct")
    if savings.is_empty():
        return pl.DataFrame(schema=SAVING_RANGE_SCHEMA)
    low, high = savings.row(0, named=True), savings.row(-1, named=True)
    best, worst = savings["best"].to_list(), savings["worst"].to_list()
    best_set, worst_set = order_configurations(best), order_configurations(worst)
    if len(best_set) == 1 and len(worst_set) == 1:
        who, against = best_set[0], worst_set[0]
    else:
        who = f"the best {PROVIDER_LABELS[provider]} configuration of each model ({_counted(best)})"
        against = f"its worst ({_counted(worst)})"
    row = SavingRange(
        provider=provider,
        metric=metric,
        configuration=" / ".join(best_set),
        baseline=" / ".join(worst_set),
        n_models=savings.height,
        min_saving_pct=low["saving_pct"],
        min_saving_model=low["model"],
        max_saving_pct=high["saving_pct"],
        max_saving_model=high["model"],
        sentence=saving_sentence(metric, who, against, low["saving_pct"], high["saving_pct"]),
    )
    return pl.DataFrame([row.__dict__], schema=SAVING_RANGE_SCHEMA, orient="row")


SAVING_METRICS: tuple[str, ...] = ("energy_global_j", "duration_s")


def all_saving_ranges(
    runs: pl.DataFrame,
    metrics: Sequence[str] = SAVING_METRICS,
    method: AnalysisMethod = EXTENDED,
) -> pl.DataFrame:
    """The saving ranges of every provider with runs and every metric, in one table.

    ``method.savings``: ``"against_torch"`` gives one row per configuration against the
    provider's ``<TORCH, ...>`` baseline (``saving_ranges``); ``"best_vs_worst"`` one row per
    provider, the paper's best-against-worst range (``best_vs_worst_ranges``). Energy is the
    method's presented global energy (``AnalysisMethod.presented_runs``).
    """
    runs = method.presented_runs(runs)
    present = set(runs["provider"].unique().to_list()) if "provider" in runs.columns else set()
    ranges = best_vs_worst_ranges if method.savings == "best_vs_worst" else saving_ranges
    frames = [
        ranges(runs, provider, metric)
        for provider in PROVIDERS
        if provider in present
        for metric in metrics
        if metric in runs.columns
    ]
    if not frames:
        return pl.DataFrame(schema=SAVING_RANGE_SCHEMA)
    return pl.concat(frames)


SAVING_DEFINITIONS: dict[str, str] = {
    "against_torch": (
        "Savings against the TORCH baseline of each provider. Per model: (median of the "
        "baseline - median of the configuration) / median of the baseline x 100, medians over "
        "repetitions; the range runs over the models."
    ),
    "best_vs_worst": (
        "Savings of the best against the worst configuration of each provider, as the paper "
        "computed them. Per model: (1 - lowest median / highest median) x 100 over the "
        "provider's analysed configurations, medians over repetitions; the range runs over the "
        "models."
    ),
}


def write_saving_sentences(
    ranges: pl.DataFrame,
    path: Path,
    method: AnalysisMethod = EXTENDED,
    labels: DataLabels | None = None,
) -> Path:
    """The sentences as a Markdown list, one per range, under the method's definition."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# Saving ranges (analysis method: {method.name})",
        "",
        SAVING_DEFINITIONS[method.savings],
        "",
    ]
    if labels is not None and labels.lines():
        lines += [f"> Note: {line}." for line in labels.lines()] + [""]
    lines += [
        f"- {sentence} ({n} models)"
        for sentence, n in ranges.select("sentence", "n_models").iter_rows()
    ]
    if ranges.is_empty():
        lines.append("- (no model has two configurations of one provider to compare)")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
