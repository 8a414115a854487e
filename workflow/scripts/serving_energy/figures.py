"""The paper's figures: box plots by size category and configuration, per-model box plots, and
the timeline of one run.

Every function takes data and an output *stem* (a path without suffix), writes one file per
format (PNG for quick viewing, SVG as the vector format) and returns the paths it wrote. Figures
are closed before returning so a long study does not accumulate open figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the workflow runs on servers and in CI

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from serving_energy.stats import (
    METRICS,
    METRICS_BY_COLUMN,
    PROVIDER_LABELS,
    PROVIDERS,
    Metric,
    order_configurations,
)

DEFAULT_FORMATS: tuple[str, ...] = ("png", "svg")
MAX_LEGEND_MODELS = 24  # beyond this a legend hides the plot; colours still differ
_JITTER_SEED = 0  # the same input gives the same picture


def model_palette(models: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per model, stable for the same set of models."""
    ordered = sorted(set(models))
    name = "tab20" if len(ordered) <= 20 else "husl"
    colours = sns.color_palette(name, n_colors=len(ordered))
    return dict(zip(ordered, colours, strict=True))


def _save(figure: Figure, out_stem: Path, formats: Sequence[str]) -> list[Path]:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_stem.with_name(f"{out_stem.name}.{fmt}")
        # No bbox_inches="tight": it draws the figure once more per file; the layout reserves
        # room for titles and legends instead.
        figure.savefig(path, format=fmt, dpi=150)
        written.append(path)
    plt.close(figure)
    return written


def _fixed_layout(
    figure: Figure,
    n_rows: int,
    n_cols: int,
    *,
    left_in: float = 1.0,
    right_in: float = 0.15,
    top_in: float = 0.65,
    bottom_in: float = 1.05,
    row_gap_in: float = 1.25,
    col_gap_in: float = 0.75,
) -> None:
    """Margins and gaps in inches, set directly.

    ``tight_layout`` measured every rotated tick label with an extra draw and took most of the
    time of a figure; the labels here have a known size, so fixed room is enough.
    """
    width, height = figure.get_size_inches()
    axes_height = (height - top_in - bottom_in - (n_rows - 1) * row_gap_in) / n_rows
    axes_width = (width - left_in - right_in - (n_cols - 1) * col_gap_in) / n_cols
    figure.subplots_adjust(
        left=left_in / width,
        right=1 - right_in / width,
        top=1 - top_in / height,
        bottom=bottom_in / height,
        hspace=row_gap_in / max(axes_height, 0.1),
        wspace=col_gap_in / max(axes_width, 0.1),
    )


def _boxes_with_points(
    ax: Axes,
    data: pl.DataFrame,
    column: str,
    configurations: Sequence[str],
    palette: dict[str, tuple[float, float, float]],
) -> None:
    """Grey boxes per configuration, each run a point in its model's colour."""
    rng = np.random.default_rng(_JITTER_SEED)
    values = [
        data.filter(pl.col("configuration") == c)[column].drop_nulls().to_numpy()
        for c in configurations
    ]
    positions = np.arange(len(configurations))
    ax.boxplot(
        values,
        positions=positions,
        widths=0.6,
        showfliers=False,  # every run is drawn as a point already
        patch_artist=True,
        boxprops={"facecolor": "0.92", "edgecolor": "0.3"},
        medianprops={"color": "0.1"},
        whiskerprops={"color": "0.3"},
        capprops={"color": "0.3"},
    )
    for position, configuration in zip(positions, configurations, strict=True):
        of_config = data.filter(pl.col("configuration") == configuration).drop_nulls(column)
        y = of_config[column].to_numpy()
        x = position + rng.uniform(-0.18, 0.18, size=y.size)
        colours = [palette[model] for model in of_config["model"]]
        ax.scatter(x, y, s=9, c=colours, alpha=0.8, linewidths=0, zorder=3)
    ax.set_xticks(positions, configurations, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(configurations) - 0.4)


def _legend_width_in(palette: dict[str, tuple[float, float, float]]) -> float:
    if len(palette) > MAX_LEGEND_MODELS:
        return 0.0
    return 0.9 + 0.07 * max(len(model) for model in palette)


def _model_legend(figure: Figure, palette: dict[str, tuple[float, float, float]]) -> None:
    """The model legend in the room ``_legend_width_in`` reserved at the right."""
    if len(palette) > MAX_LEGEND_MODELS:
        return
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=model)
        for model, colour in palette.items()
    ]
    figure.legend(
        handles=handles,
        title="Model",
        loc="center right",
        frameon=False,
        fontsize=8,
    )


def plot_metric_by_size_and_configuration(
    runs: pl.DataFrame,
    metric: Metric,
    out_stem: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """The paper's Figures 3-5 for one metric.

    Rows: size categories; columns: the providers the metric is measured on (CPU and CUDA side
    by side, so only CUDA for GPU metrics). A row shares its y axis so CPU and CUDA compare
    directly; rows do not, as a 3 B model uses several times the energy of a 110 M one.
    """
    data = runs.filter(pl.col(metric.column).is_not_null())
    providers = [p for p in PROVIDERS if p in metric.providers]
    categories = sorted(data["size_category"].unique().to_list()) or [None]
    palette = model_palette(runs["model"].to_list())
    legend_in = _legend_width_in(palette)
    figure, axes = plt.subplots(
        len(categories),
        len(providers),
        figsize=(4.2 * len(providers) + legend_in + 0.8, 3.2 * len(categories)),
        sharey="row",
        squeeze=False,
    )
    for row, category in enumerate(categories):
        for col, provider in enumerate(providers):
            ax = axes[row][col]
            panel = data.filter(
                (pl.col("provider") == provider) & (pl.col("size_category") == category)
            )
            configurations = order_configurations(panel["configuration"])
            if configurations:
                _boxes_with_points(ax, panel, metric.column, configurations, palette)
            else:
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"Size category {category} - {PROVIDER_LABELS[provider]}", fontsize=9)
            if col == 0:
                ax.set_ylabel(metric.axis_label)
            ax.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{metric.label} by size category and configuration")
    _model_legend(figure, palette)
    _fixed_layout(
        figure, len(categories), len(providers), right_in=legend_in + 0.15, col_gap_in=0.3
    )
    return _save(figure, out_stem, formats)


def plot_paper_figures(
    runs: pl.DataFrame,
    out_dir: Path,
    metrics: Sequence[Metric] = METRICS,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """One by-size-and-configuration figure per metric present in the runs:
    ``out_dir/boxplot_<metric column>.<fmt>``."""
    written: list[Path] = []
    for metric in metrics:
        if metric.column in runs.columns and runs[metric.column].drop_nulls().len() > 0:
            stem = out_dir / f"boxplot_{metric.column}"
            written += plot_metric_by_size_and_configuration(runs, metric, stem, formats)
    return written


def plot_model(
    runs: pl.DataFrame,
    model: str,
    out_stem: Path,
    metrics: Sequence[Metric] = METRICS,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """Box plots of every metric of one model, one panel per metric, all its configurations."""
    data = runs.filter(pl.col("model") == model)
    present = [
        m for m in metrics if m.column in data.columns and data[m.column].drop_nulls().len() > 0
    ]
    n_cols = 3
    n_rows = max(1, -(-len(present) // n_cols))
    figure, axes = plt.subplots(n_rows, n_cols, figsize=(4.4 * n_cols, 3.3 * n_rows), squeeze=False)
    palette = {model: sns.color_palette("tab10", 1)[0]}
    for ax, metric in zip(axes.flat, present, strict=False):
        of_metric = data.filter(pl.col(metric.column).is_not_null())
        _boxes_with_points(
            ax, of_metric, metric.column, order_configurations(of_metric["configuration"]), palette
        )
        ax.set_title(metric.label, fontsize=9)
        ax.set_ylabel(metric.axis_label)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(present) :]:
        ax.set_visible(False)
    figure.suptitle(model)
    _fixed_layout(figure, n_rows, n_cols)
    return _save(figure, out_stem, formats)


def plot_models(
    runs: pl.DataFrame,
    out_dir: Path,
    metrics: Sequence[Metric] = METRICS,
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """``plot_model`` for every model: ``out_dir/model_<model>.<fmt>``."""
    written: list[Path] = []
    for model in sorted(runs["model"].unique().to_list()):
        written += plot_model(runs, model, out_dir / f"model_{model}", metrics, formats)
    return written


# ---------------------------------------------------------------------------------------------
# Timeline of one run

_START_WORDS = ("start", "begin", "enter")
_END_WORDS = ("end", "stop", "exit", "finish")


def phase_spans(timeline: pl.DataFrame) -> list[tuple[str, float, float]]:
    """(phase, start_s, end_s) of every phase, from the markers, else from the samples' phases.

    A marker whose event names a start opens its phase, one that names an end closes it; a
    phase with no closing marker ends where the next phase starts (or at the last time seen).
    """
    if "phase" not in timeline.columns:
        return []
    t_last = float(timeline["t_s"].max()) if timeline.height else 0.0
    markers = timeline.filter(
        (pl.col("row_type") == "marker") & pl.col("phase").is_not_null()
    ).sort("t_s")
    spans: list[tuple[str, float, float]] = []
    if markers.height:
        starts: dict[str, float] = {}
        ends: dict[str, float] = {}
        for row in markers.iter_rows(named=True):
            event = str(row.get("event") or "").lower()
            phase, t = row["phase"], float(row["t_s"])
            if any(word in event for word in _END_WORDS):
                ends[phase] = t
            elif phase not in starts:  # a start, or a bare marker: the phase begins here
                starts[phase] = t
        ordered = sorted(starts.items(), key=lambda item: item[1])
        for index, (phase, start) in enumerate(ordered):
            following = ordered[index + 1][1] if index + 1 < len(ordered) else t_last
            spans.append((phase, start, ends.get(phase, following)))
        return spans
    samples = timeline.filter(pl.col("phase").is_not_null())
    for (phase,), rows in samples.group_by("phase", maintain_order=True):
        spans.append((phase, float(rows["t_s"].min()), float(rows["t_s"].max())))
    return sorted(spans, key=lambda span: span[1])


MAX_TIMELINE_LEGEND = 10
_PER_CORE = "core"  # per-core CPU usage: many thin lines, drawn grey and unlabelled


def power_from_energy_counters(samples: pl.DataFrame) -> pl.DataFrame:
    """Power (W) samples derived from cumulative energy counters (J) as dE/dt.

    Used where a meter only records its counter (RAPL, NVML total energy). A negative step is a
    counter wrap or reset and is dropped rather than drawn as a spike.
    """
    counters = samples.filter(pl.col("unit") == "J")
    if "kind" in counters.columns:
        counters = counters.filter(pl.col("kind").is_null() | (pl.col("kind") == "counter"))
    if counters.height == 0:
        return samples.clear()
    derived = (
        counters.sort("meter", "quantity", "t_s")
        .with_columns(
            (
                pl.col("value").diff().over("meter", "quantity")
                / pl.col("t_s").diff().over("meter", "quantity")
            ).alias("value"),
            (pl.col("quantity") + " (from counter)").alias("quantity"),
            pl.lit("W").alias("unit"),
        )
        .filter(pl.col("value").is_not_null() & (pl.col("value") >= 0))
        .filter(pl.col("value").is_finite())
    )
    return derived


def _plot_unit(ax: Axes, samples: pl.DataFrame, unit: str, ylabel: str) -> None:
    of_unit = samples.filter(pl.col("unit") == unit)
    if of_unit.height == 0:
        ax.text(0.5, 0.5, f"no samples in {unit}", ha="center", va="center", transform=ax.transAxes)
    labelled = 0
    per_core_labelled = False
    for (meter, quantity), series in of_unit.group_by("meter", "quantity", maintain_order=True):
        series = series.sort("t_s")
        if _PER_CORE in str(quantity):
            label = None if per_core_labelled else f"{meter}: per core"
            per_core_labelled = True
            ax.plot(series["t_s"], series["value"], linewidth=0.5, color="0.7", label=label)
            continue
        labelled += 1
        ax.plot(series["t_s"], series["value"], linewidth=1.0, label=f"{meter}: {quantity}")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if 0 < labelled + per_core_labelled <= MAX_TIMELINE_LEGEND:
        ax.legend(fontsize=7, loc="upper right")


def plot_run_timeline(
    timeline: pl.DataFrame,
    out_stem: Path,
    title: str = "",
    formats: Sequence[str] = DEFAULT_FORMATS,
) -> list[Path]:
    """Power (W) and utilisation (%) over time for one run, with its phases shaded.

    ``timeline`` is long: t_s, row_type ("sample" | "marker"), meter, quantity, value, unit,
    phase, event (optional: kind). Other row types are ignored. Without any power samples,
    power is derived from energy counters (J); quantities that are missing altogether (no GPU,
    no RAPL) leave their panel saying so.
    """
    samples = timeline.filter(pl.col("row_type") == "sample").filter(
        pl.col("value").is_not_null() & pl.col("t_s").is_not_null()
    )
    if samples.filter(pl.col("unit") == "W").height == 0:
        samples = pl.concat([samples, power_from_energy_counters(samples)], how="diagonal_relaxed")
    figure, (power_ax, pct_ax) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    _plot_unit(power_ax, samples, "W", "Power [W]")
    _plot_unit(pct_ax, samples, "%", "Utilisation [%]")
    colours = sns.color_palette("pastel", 8)
    seen: dict[str, tuple[float, float, float]] = {}
    for phase, start, end in phase_spans(timeline):
        colour = seen.setdefault(phase, colours[len(seen) % len(colours)])
        for ax in (power_ax, pct_ax):
            ax.axvspan(start, end, color=colour, alpha=0.35, linewidth=0, zorder=0)
        power_ax.text(
            (start + end) / 2,
            1.01,
            phase,
            transform=power_ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    pct_ax.set_xlabel("Time since start of run [s]")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, out_stem, formats)


def metric_for(column: str) -> Metric:
    """The ``Metric`` of a runs-table column (so scripts can pass column names)."""
    return METRICS_BY_COLUMN[column]
