"""The time-energy view: for each model (and size category), every configuration's median energy
against its median time, and which configurations no other one beats on both.

A practitioner choosing an engine asks for the trade-off, not two separate rankings: a
configuration is *non-dominated* (on the Pareto front) when no other configuration of the same
model is at least as good in both time and energy and better in one. Spreads are the
interquartile range over repetitions (per model) or the range of the models' medians (per size
category, whose points are the means of Tables 4 and 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import seaborn as sns

from serving_energy.analysis.figures import (
    DEFAULT_FORMATS,
    FOOTER_IN,
    _description,
    _footer,
    _save,
    _title,
    _wrap,
)
from serving_energy.analysis.labels import DataLabels
from serving_energy.study.vocabulary import order_configurations

ENERGY = "energy_global_j"
TIME = "duration_s"


@dataclass(frozen=True)
class TradeoffPoint:
    configuration: str
    time_s: float
    energy_j: float
    time_spread_s: tuple[float, float]  # low, high
    energy_spread_j: tuple[float, float]
    non_dominated: bool


def non_dominated(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (time, energy), whether no other point is <= in both and < in one."""
    flags = []
    for i, (t, e) in enumerate(points):
        beaten = any(
            (t2 <= t and e2 <= e) and (t2 < t or e2 < e)
            for j, (t2, e2) in enumerate(points)
            if j != i
        )
        flags.append(not beaten)
    return flags


def model_points(runs: pl.DataFrame, model: str) -> list[TradeoffPoint]:
    """One point per configuration of ``model``: medians over repetitions, IQR as the spread."""
    data = runs.filter((pl.col("model") == model) & pl.col(ENERGY).is_not_null())
    rows = []
    for configuration in order_configurations(data["configuration"]):
        of = data.filter(pl.col("configuration") == configuration)
        t, e = of[TIME].to_numpy(), of[ENERGY].to_numpy()
        rows.append(
            (
                configuration,
                float(np.median(t)),
                float(np.median(e)),
                (float(np.quantile(t, 0.25)), float(np.quantile(t, 0.75))),
                (float(np.quantile(e, 0.25)), float(np.quantile(e, 0.75))),
            )
        )
    flags = non_dominated([(r[1], r[2]) for r in rows])
    return [TradeoffPoint(*row, flag) for row, flag in zip(rows, flags, strict=True)]


def category_points(runs: pl.DataFrame, category) -> list[TradeoffPoint]:
    """One point per configuration: the mean over the category's models of their medians (as
    Tables 4 and 5), the range of those medians as the spread."""
    data = runs.filter((pl.col("size_category") == category) & pl.col(ENERGY).is_not_null())
    medians = data.group_by("model", "configuration").agg(
        pl.col(TIME).median(), pl.col(ENERGY).median()
    )
    rows = []
    for configuration in order_configurations(medians["configuration"]):
        of = medians.filter(pl.col("configuration") == configuration)
        t, e = of[TIME].to_numpy(), of[ENERGY].to_numpy()
        rows.append(
            (
                configuration,
                float(t.mean()),
                float(e.mean()),
                (float(t.min()), float(t.max())),
                (float(e.min()), float(e.max())),
            )
        )
    flags = non_dominated([(r[1], r[2]) for r in rows])
    return [TradeoffPoint(*row, flag) for row, flag in zip(rows, flags, strict=True)]


def plot_tradeoff(
    points: Sequence[TradeoffPoint],
    title: str,
    out_stem: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: DataLabels | None = None,
    spread: str = "interquartile range over repetitions",
) -> list[Path]:
    """Energy against time, one marker per configuration; the non-dominated ones filled and
    joined by the front, the others hollow. Nothing to draw: no file."""
    if not points:
        return []
    figure, ax = plt.subplots(figsize=(7.2, 5.0 + FOOTER_IN))
    colours = sns.color_palette("tab10", len(points))
    for point, colour in zip(points, colours, strict=True):
        t_low, t_high = point.time_spread_s
        e_low, e_high = point.energy_spread_j
        ax.errorbar(
            point.time_s,
            point.energy_j,
            xerr=[[point.time_s - t_low], [t_high - point.time_s]],
            yerr=[[point.energy_j - e_low], [e_high - point.energy_j]],
            fmt="o",
            markersize=8,
            color=colour,
            markerfacecolor=colour if point.non_dominated else "white",
            markeredgewidth=1.5,
            capsize=3,
            label=point.configuration + ("" if point.non_dominated else " (dominated)"),
            zorder=3,
        )
    front = sorted((p.time_s, p.energy_j) for p in points if p.non_dominated)
    if len(front) > 1:
        ax.plot(*zip(*front, strict=True), color="0.4", linestyle="--", linewidth=1, zorder=2)
    times = [p.time_s for p in points]
    energies = [p.energy_j for p in points]
    # Configurations an order of magnitude apart (CPU against CUDA) stay readable on log axes.
    if min(times) > 0 and max(times) / min(times) > 20:
        ax.set_xscale("log")
    if min(energies) > 0 and max(energies) / min(energies) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("Execution time [s] (median)")
    ax.set_ylabel("Global energy [J] (median)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    title_lines = _title(figure, title)
    height = 5.0 + FOOTER_IN
    explanation = _wrap(
        "Filled: not beaten on both time and energy by another configuration (dashed: the "
        f"front); bars: {spread}.",
        7.0,
        7,
    )
    figure.text(0.01, (0.05 + FOOTER_IN) / height, explanation, fontsize=7, color="0.25")
    _footer(figure, labels.headline if labels else None)
    figure.subplots_adjust(
        left=1.0 / 7.2,
        right=1 - 2.3 / 7.2,
        top=1 - (0.35 + 0.25 * title_lines) / height,
        bottom=(0.8 + 0.12 * explanation.count("\n") + FOOTER_IN) / height,
    )
    return _save(figure, out_stem, formats, _description(labels))


def plot_tradeoff_figures(
    runs: pl.DataFrame,
    out_dir: Path,
    formats: Sequence[str] = DEFAULT_FORMATS,
    labels: DataLabels | None = None,
) -> list[Path]:
    """``time_energy_<model>`` per model and ``time_energy_category_<n>`` per size category."""
    if runs.is_empty() or ENERGY not in runs.columns:
        return []
    written: list[Path] = []
    for model in sorted(runs["model"].unique().to_list()):
        written += plot_tradeoff(
            model_points(runs, model),
            f"{model}: energy against time per configuration",
            out_dir / f"time_energy_{model}",
            formats,
            labels,
        )
    for category in sorted(runs["size_category"].unique().to_list()):
        written += plot_tradeoff(
            category_points(runs, category),
            f"Size category {category}: mean of the models' medians per configuration",
            out_dir / f"time_energy_category_{category}",
            formats,
            labels,
            spread="range of the models' medians",
        )
    return written
