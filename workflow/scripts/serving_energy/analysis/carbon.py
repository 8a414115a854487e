"""Emissions from energy: each run's global energy times the grid's carbon intensity.

Off by default (``carbon.intensity_g_per_kwh: null``). The intensity is a constant (gCO2e/kWh) or
a CSV of timestamped intensities (``timestamp,g_per_kwh``; ISO 8601 times) for the study's period,
of which each run takes the latest intensity at or before its start. ``co2e_g`` inherits how its
energy was obtained: from an estimated energy it is an estimate too (``co2e_basis``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from serving_energy.analysis.labels import ESTIMATE

J_PER_KWH = 3.6e6


class CarbonError(ValueError):
    """A carbon setting or intensity file that cannot be used; the message names it."""


@dataclass(frozen=True)
class CarbonIntensity:
    """A constant, or a series of (time, gCO2e/kWh) sorted by time."""

    source: str
    constant_g_per_kwh: float | None = None
    series: tuple[tuple[datetime, float], ...] = ()

    def at(self, when: datetime | None) -> float | None:
        if self.constant_g_per_kwh is not None:
            return self.constant_g_per_kwh
        if when is None or not self.series:
            return None
        times = [t for t, _ in self.series]
        index = bisect.bisect_right(times, _comparable(when, times[0])) - 1
        # Before the first timestamp the series says nothing: no figure rather than a guess.
        return self.series[index][1] if index >= 0 else None

    def describe(self) -> str:
        if self.constant_g_per_kwh is not None:
            return f"{self.constant_g_per_kwh:g} gCO2e/kWh (constant; source: {self.source})"
        first, last = self.series[0][0], self.series[-1][0]
        return (
            f"{len(self.series)} timestamped intensities from {first.isoformat()} to "
            f"{last.isoformat()} (source: {self.source})"
        )


def _comparable(when: datetime, like: datetime) -> datetime:
    """A run's time made comparable with the series' (both aware or both naive)."""
    if (when.tzinfo is None) == (like.tzinfo is None):
        return when
    return when.replace(tzinfo=None) if like.tzinfo is None else when.astimezone(like.tzinfo)


def load_intensity(setting: Mapping, base_dir: Path = Path(".")) -> CarbonIntensity | None:
    """The study's ``carbon`` setting as an intensity (None: carbon is off)."""
    value = setting.get("intensity_g_per_kwh")
    if value is None:
        return None
    source = str(setting.get("source") or "").strip()
    if not source:
        raise CarbonError(
            "carbon.source: say where carbon.intensity_g_per_kwh comes from (a grid operator, "
            "Electricity Maps, a national average and its year); it is printed with every figure"
        )
    if isinstance(value, bool):
        raise CarbonError(f"carbon.intensity_g_per_kwh: {value!r} is neither a number nor a CSV")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise CarbonError(f"carbon.intensity_g_per_kwh: {value} is not a non-negative number")
        return CarbonIntensity(source, constant_g_per_kwh=float(value))
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    return CarbonIntensity(source, series=_read_series(path))


def _read_series(path: Path) -> tuple[tuple[datetime, float], ...]:
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise CarbonError(f"carbon.intensity_g_per_kwh: cannot read {path}: {exc}") from exc
    missing = {"timestamp", "g_per_kwh"} - set(frame.columns)
    if missing:
        raise CarbonError(
            f"{path}: needs the columns timestamp,g_per_kwh (missing {sorted(missing)})"
        )
    series = []
    for line, (stamp, value) in enumerate(frame.select("timestamp", "g_per_kwh").iter_rows(), 2):
        try:
            when, intensity = datetime.fromisoformat(stamp), float(value)
        except (TypeError, ValueError) as exc:
            raise CarbonError(f"{path}, line {line}: {stamp!r}, {value!r}: {exc}") from exc
        if not math.isfinite(intensity) or intensity < 0:
            raise CarbonError(f"{path}, line {line}: intensity {value!r} is not >= 0")
        series.append((when, intensity))
    if not series:
        raise CarbonError(f"{path}: no intensities")
    aware = {when.tzinfo is not None for when, _ in series}
    if len(aware) > 1:
        raise CarbonError(f"{path}: mixes timestamps with and without a time zone")
    return tuple(sorted(series))


def add_co2e(runs: pl.DataFrame, intensity: CarbonIntensity | None) -> pl.DataFrame:
    """``co2e_g``, ``co2e_intensity_g_per_kwh`` and ``co2e_basis`` ("measured" or "estimate",
    from the energy's method) for every run; the runs unchanged when carbon is off."""
    if intensity is None:
        return runs
    starts = runs["started_at"].to_list() if "started_at" in runs.columns else [None] * runs.height
    per_run = [intensity.at(_parse(start)) for start in starts]
    method = (
        runs["energy_global_method"].cast(pl.String).fill_null("")
        if "energy_global_method" in runs.columns
        else pl.Series([""] * runs.height)
    )
    return runs.with_columns(
        pl.Series("co2e_intensity_g_per_kwh", per_run, dtype=pl.Float64),
    ).with_columns(
        (pl.col("energy_global_j") / J_PER_KWH * pl.col("co2e_intensity_g_per_kwh")).alias(
            "co2e_g"
        ),
        pl.when(method.str.contains(ESTIMATE))
        .then(pl.lit(ESTIMATE))
        .otherwise(pl.lit("measured"))
        .alias("co2e_basis"),
    )


def _parse(value) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
