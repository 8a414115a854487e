"""The paper's figures: box plots by size category and configuration, per-model box plots, and
the timeline of one run.

Every function takes data and an output *stem* (a path without suffix), writes one file per
format (PNG for quick viewing, SVG as the vector format) and returns the paths it wrote. Figures
are closed before returning so a long study does not accumulate open figures.

Labels travel: given ``DataLabels``, a figure gets a footer naming the analysis method and the
data's caveats (estimated energy, stand-in models), also written into the PNG's ``Description``
metadata; SVG text stays text, so both can be searched. A figure never draws an empty panel:
providers without runs get no column, metrics without data no figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import replace
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
from matplotlib.patches import Patch

from serving_energy.analysis.labels import DataLabels
from serving_energy.analysis.metrics import METRICS, Metric
from serving_energy.analysis.selection import valid_mask
from serving_energy.meters.base import COUNTER, METHOD_ESTIMATE, Reading
from serving_energy.meters.timeline import PHASES, Timeline
from serving_energy.meters.window import unwrap_counter
from serving_energy.study.vocabulary import PROVIDER_LABELS, PROVIDERS, order_configurations

# Text in SVG files stays text (searchable, editable) instead of becoming outlines.
plt.rcParams["svg.fonttype"] = "none"

DEFAULT_FORMATS: tuple[str, ...] = ("png", "svg")
FOOTER_IN = 0.35  # room at the bottom of a figure for its footer line
MAX_LEGEND_MODELS = 24  # beyond this a legend hides the plot; colours still differ
_JITTER_SEED = 0  # the same input gives the same picture


def model_palette(models: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """One colour per model, stable for the same set of models."""
    ordered = sorted(set(models))
    # tab20 pairs a dark and a pale shade: a pale point vanishes on a grey box, so up to ten
    # models get tab10's distinct colours.
    name = "tab10" if len(ordered) <= 10 else "tab20" if len(ordered) <= 20 else "husl"
    colours = sns.color_palette(name, n_colors=len(ordered))
    return dict(zip(ordered, colours, strict=True))


def _footer(figure: Figure, text: str | None) -> None:
    """The labels' line at the bottom left of the figure (the layout reserved FOOTER_IN)."""
    if text:
        figure.text(0.01, 0.008, text, ha="left", va="bottom", fontsize=7, color="0.25")


def _save(
    figure: Figure, out_stem: Path, formats: Sequence[str], description: str | None = None
) -> list[Path]:
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_stem.with_name(f"{out_stem.name}.{fmt}")
        metadata = {"Description": description} if description and fmt in ("png", "svg") else None
        # No bbox_inches="tight": it draws the figure once more per file; the layout reserves
        # room for titles and legends instead.
        figure.savefig(path, format=fmt, dpi=150, metadata=metadata)
        written.append(path)
    plt.close(figure)
    return written


def _description(labels: DataLabels | None) -> str | None:
    if labels is None:
        return None
    return " ".join([labels.headline + ".", *(f"{line}." for line in labels.lines())])


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (an average
    character is about 0.55 em wide)."""
    chars = max(12, int(width_in * 72 / (fontsize * 0.55)))
    return "\n".join(textwrap.wrap(text, chars)) or text


def _title(figure: Figure, text: str, fontsize: float = 12) -> int:
    """The figure's title, wrapped to its width; returns its number of lines."""
    wrapped = _wrap(text, figure.get_size_inches()[0] - 0.4, fontsize)
    figure.suptitle(wrapped, fontsize=fontsize)
    return wrapped.count("\n") + 1


def _wrap_axis_labels(figure: Figure) -> None:
    """Each axes' y label wrapped to the height of its axes, once the layout is set (a long
    label ran past its axis and over the tick labels of the panel below)."""
    height_in = figure.get_size_inches()[1]
    for ax in figure.axes:
        label = ax.get_ylabel()
        if label:
            size = ax.yaxis.label.get_fontsize()
            ax.set_ylabel(
                _wrap(label.replace("\n", " "), ax.get_position().height * height_in, size)
            )


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
    _wrap_axis_labels(figure)


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
        colours = np.array([palette[model] for model in of_config["model"]]).reshape(-1, 3)
        # Invalid runs kept in by analysis.invalid_runs = keep are drawn as crosses.
        valid = valid_mask(of_config).to_numpy()
        ax.scatter(x[valid], y[valid], s=9, c=colours[valid], alpha=0.8, linewidths=0, zorder=3)
        if (~valid).any():
            ax.scatter(x[~valid], y[~valid], s=22, c=colours[~valid], marker="x", zorder=4)
    ax.set_xticks(positions, configurations, rotation=30, ha="right")
    ax.set_xlim(-0.6, len(configurations) - 0.4)


def _legend_width_in(palette: dict[str, tuple[float, float, float]]) -> float:
    if len(palette) > MAX_LEGEND_MODELS:
        return 0.0
    return 0.9 + 0.07 * max(len(model) for model in palette)


def _model_legend(
    figure: Figure, palette: dict[str, tuple[float, float, float]], invalid_kept: bool = False
) -> None:
    """The model legend in the room ``_legend_width_in`` reserved at the right; with
    ``invalid_kept``, an entry for the crosses that mark invalid runs."""
    if len(palette) > MAX_LEGEND_MODELS:
        return
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=model)
        for model, colour in palette.items()
    ]
    if invalid_kept:
        handles.append(
            Line2D([], [], marker="x", linestyle="", color="0.3", label="invalid run (kept)")
        )
    figure.legend(
        handles=handles,
        title="Model",
        loc="center right",
        frameon=False,
        fontsize=8,
    )


def providers_with_data(runs: pl.DataFrame, metric: Metric) -> list[str]:
    """The providers the metric is measured on that have at least one value of it, in order."""
    if metric.column not in runs.columns:
        return []
    present = set(runs.filter(pl.col(metric.column).is_not_null())["provider"].to_list())
    return [p for p in PROVIDERS if p in metric.providers and p in present]


def plot_metric_by_size_and_configuration(
    runs: pl.DataFrame,
    metric: Metric,
    out_stem: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: DataLabels | None = None,
) -> list[Path]:
    """The paper's Figures 3-5 for one metric.

    Rows: size categories; columns: the providers the metric is measured on *and* that have
    runs (CPU and CUDA side by side; only CUDA for GPU metrics; no CUDA column in a CPU-only
    study). A row shares its y axis so CPU and CUDA compare directly; rows do not, as a 3 B model
    uses several times the energy of a 110 M one. Nothing to draw: no file, an empty list.
    """
    providers = providers_with_data(runs, metric)
    if not providers:
        return []
    data = runs.filter(pl.col(metric.column).is_not_null() & pl.col("provider").is_in(providers))
    categories = sorted(data["size_category"].unique().to_list())
    palette = model_palette(runs["model"].to_list())
    legend_in = _legend_width_in(palette)
    figure, axes = plt.subplots(
        len(categories),
        len(providers),
        figsize=(4.2 * len(providers) + legend_in + 0.8, 3.2 * len(categories) + FOOTER_IN),
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
            else:  # this category has no model with runs on this provider (the other does)
                ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
            ax.set_title(f"Size category {category} - {PROVIDER_LABELS[provider]}", fontsize=9)
            if col == 0:
                ax.set_ylabel(metric.axis_label)
            ax.grid(axis="y", alpha=0.3)
    title_lines = _title(figure, f"{metric.label} by size category and configuration")
    _model_legend(figure, palette, invalid_kept=not valid_mask(data).all())
    _footer(figure, labels.headline if labels else None)
    _fixed_layout(
        figure,
        len(categories),
        len(providers),
        left_in=1.15,
        right_in=legend_in + 0.15,
        top_in=0.45 + 0.25 * title_lines,
        col_gap_in=0.3,
        bottom_in=1.05 + FOOTER_IN,
    )
    return _save(figure, out_stem, formats, _description(labels))


# Not a tested variable: how close each configuration decodes to the bound its device's memory
# bandwidth sets for its model (roofline.run_roofline); 1.0 would be every byte at full speed.
ROOFLINE = Metric("roofline_fraction", "Decode speed against the bandwidth bound", "fraction")
# Not a tested variable either: the unit serving benchmarks report (energy_global_j / new_tokens,
# with the method's presented energy).
ENERGY_PER_TOKEN = Metric("energy_per_token_j", "Energy per generated token", "J/token")


def plot_study_figures(
    runs: pl.DataFrame,
    out_dir: Path,
    metrics: Sequence[Metric] = METRICS,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: DataLabels | None = None,
) -> list[Path]:
    """Every figure of the study in ``out_dir``: ``boxplot_<metric column>`` by size category and
    configuration for each metric with data (the paper's Figures 3-5), ``model_<model>`` for each
    model, ``roofline_fraction`` (where the runs have a roofline), ``energy_per_token_j``, and
    the time-energy view (``analysis.tradeoff``: per model and per size category)."""
    # Imported here: the trade-off module draws with this module's helpers.
    from serving_energy.analysis.tradeoff import plot_tradeoff_figures

    written: list[Path] = []
    for metric in metrics:
        stem = out_dir / f"boxplot_{metric.column}"
        written += plot_metric_by_size_and_configuration(runs, metric, stem, formats, labels)
    for model in sorted(runs["model"].unique().to_list()):
        written += plot_model(runs, model, out_dir / f"model_{model}", metrics, formats, labels)
    for metric in (ROOFLINE, ENERGY_PER_TOKEN):
        stem = out_dir / metric.column
        written += plot_metric_by_size_and_configuration(runs, metric, stem, formats, labels)
    return written + plot_tradeoff_figures(runs, out_dir, formats, labels)


def plot_model(
    runs: pl.DataFrame,
    model: str,
    out_stem: Path,
    metrics: Sequence[Metric] = METRICS,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: DataLabels | None = None,
) -> list[Path]:
    """Box plots of every metric of one model, one panel per metric, all its configurations."""
    data = runs.filter(pl.col("model") == model)
    present = [
        m for m in metrics if m.column in data.columns and data[m.column].drop_nulls().len() > 0
    ]
    n_cols = 3
    n_rows = max(1, -(-len(present) // n_cols))
    figure, axes = plt.subplots(
        n_rows, n_cols, figsize=(4.4 * n_cols, 3.3 * n_rows + FOOTER_IN), squeeze=False
    )
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
    title_lines = _title(figure, model)
    _footer(figure, labels.headline if labels else None)
    _fixed_layout(
        figure, n_rows, n_cols, left_in=1.15, top_in=0.45 + 0.25 * title_lines,
        bottom_in=1.05 + FOOTER_IN,
    )  # fmt: skip
    return _save(figure, out_stem, formats, _description(labels))


# ---------------------------------------------------------------------------------------------
# Timeline of one run

MAX_TIMELINE_LEGEND = 10
_PER_CORE = "core"  # per-core CPU usage: many thin lines, drawn grey and unlabelled
INCOMPLETE = " (no end marker)"


def phase_spans(timeline: Timeline) -> list[tuple[str, float, float]]:
    """(phase, start_s, end_s) of each phase of the run, in time order.

    The bounds are the ones the metrics use (``Timeline.phase_bounds``: the first complete
    occurrence). A phase that started but never ended (a run that failed in it) is drawn up to
    the last reading and named "<phase> (no end marker)".
    """
    times = [r.t_s for r in timeline.samples] + [m.t_s for m in timeline.markers]
    t_last = max(times, default=0.0)
    started: dict[str, float] = {}
    for marker in sorted(timeline.markers, key=lambda m: m.t_s):
        if marker.event == "start":
            started.setdefault(marker.phase, marker.t_s)
    spans = []
    for phase, start in started.items():
        bounds = timeline.phase_bounds(phase)
        if bounds is not None:
            spans.append((phase, *bounds))
        else:
            spans.append((phase + INCOMPLETE, start, t_last))
    return sorted(spans, key=lambda span: span[1])


def power_from_energy_counters(readings: Sequence[Reading]) -> list[Reading]:
    """Power (W) derived from cumulative energy counters (J) as dE/dt, per sensor.

    The counter is unwrapped as the metrics unwrap it (``window.unwrap_counter`` with the
    sensor's range), so a wrap is a step of the right size rather than a spike or a gap.
    """
    by_sensor: dict[tuple[str, str, str], list[Reading]] = {}
    for r in readings:
        if r.kind == COUNTER and r.unit == "J":
            by_sensor.setdefault((r.meter, r.quantity, r.sensor), []).append(r)
    derived: list[Reading] = []
    for (meter, quantity, sensor), rows in by_sensor.items():
        rows.sort(key=lambda r: r.t_s)
        t = np.array([r.t_s for r in rows])
        cumulative, _, _ = unwrap_counter(np.array([r.value for r in rows]), rows[-1].range_max)
        dt = np.diff(t)
        ok = dt > 0
        power = np.diff(cumulative)[ok] / dt[ok]
        name = f"{quantity} (from counter)"
        for t_s, value in zip(t[1:][ok], power, strict=True):
            derived.append(
                Reading(t_s, meter, name, float(value), "W", "gauge", rows[0].method, sensor)
            )
    return derived


def _series_label(meter: str, quantity: str, sensor: str, sensors: int) -> str:
    label = f"{meter}: {quantity}"
    return f"{label} [{sensor}]" if sensors > 1 else label


def _plot_unit(ax: Axes, readings: Sequence[Reading], unit: str, ylabel: str) -> None:
    of_unit = [r for r in readings if r.unit == unit]
    if not of_unit:
        ax.text(0.5, 0.5, f"no samples in {unit}", ha="center", va="center", transform=ax.transAxes)
    series: dict[tuple[str, str, str], list[Reading]] = {}
    for r in of_unit:
        series.setdefault((r.meter, r.quantity, r.sensor), []).append(r)
    sensors_of: dict[tuple[str, str], int] = {}
    for meter, quantity, _ in series:
        sensors_of[(meter, quantity)] = sensors_of.get((meter, quantity), 0) + 1
    labelled = 0
    per_core_labelled = False
    for (meter, quantity, sensor), rows in series.items():
        rows.sort(key=lambda r: r.t_s)
        t, v = [r.t_s for r in rows], [r.value for r in rows]
        if _PER_CORE in quantity:
            label = None if per_core_labelled else f"{meter}: per core"
            per_core_labelled = True
            ax.plot(t, v, linewidth=0.5, color="0.7", label=label)
            continue
        labelled += 1
        label = _series_label(meter, quantity, sensor, sensors_of[(meter, quantity)])
        ax.plot(t, v, linewidth=1.0, label=label)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if 0 < labelled + per_core_labelled <= MAX_TIMELINE_LEGEND:
        ax.legend(fontsize=7, loc="upper right")


def _estimate_note(readings: Sequence[Reading]) -> str | None:
    estimated = sorted(
        {f"{r.meter}: {r.quantity}" for r in readings if r.method == METHOD_ESTIMATE}
    )
    if not estimated:
        return None
    return f"ESTIMATE, not measured: {', '.join(estimated)}"


def plot_run_timeline(
    timeline: Timeline,
    out_stem: Path,
    title: str = "",
    formats: Sequence[str] = DEFAULT_FORMATS,
    note: str | None = None,
) -> list[Path]:
    """Power (W) and utilisation (%) over time for one run, with its phases shaded.

    Phases are those the metrics use (``phase_spans``), named in a legend below the plot (text
    labels above short phases overlapped). Meters that record only an energy counter get their
    power derived from it (``power_from_energy_counters``); quantities missing altogether (no
    GPU, no RAPL) leave their panel saying so. Estimated quantities are named in the footer,
    after ``note`` (e.g. that the model is a stand-in).
    """
    samples = list(timeline.samples)
    with_power = {r.meter for r in samples if r.unit == "W"}
    samples += power_from_energy_counters([r for r in samples if r.meter not in with_power])
    # The clock is the machine's monotonic one; the axis starts at the run's first record.
    t0 = min([r.t_s for r in timeline.samples] + [m.t_s for m in timeline.markers], default=0.0)
    samples = [replace(r, t_s=r.t_s - t0) for r in samples]
    figure, (power_ax, pct_ax) = plt.subplots(2, 1, figsize=(10, 6.0), sharex=True)
    _plot_unit(power_ax, samples, "W", "Power [W]")
    _plot_unit(pct_ax, samples, "%", "Utilisation [%]")
    colours = sns.color_palette("pastel", len(PHASES) + 3)
    seen: dict[str, tuple[float, float, float]] = {}
    for phase, start, end in phase_spans(timeline):
        colour = seen.setdefault(phase, colours[len(seen) % len(colours)])
        for ax in (power_ax, pct_ax):
            ax.axvspan(start - t0, end - t0, color=colour, alpha=0.35, linewidth=0, zorder=0)
    if seen:
        handles = [Patch(color=c, alpha=0.6, label=phase) for phase, c in seen.items()]
        figure.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 0.045),
            ncol=min(len(handles), 7),
            fontsize=7,
            frameon=False,
            title="Phases",
            title_fontsize=7,
        )
    pct_ax.set_xlabel("Time since start of run [s]")
    if title:
        figure.suptitle(title)
    footer = "; ".join(part for part in (note, _estimate_note(samples)) if part)
    _footer(figure, footer or None)
    figure.subplots_adjust(left=0.08, right=0.98, top=0.92, bottom=0.22, hspace=0.12)
    return _save(figure, out_stem, formats, footer or None)
