"""Energy and utilisation over one phase window of a timeline.

Per component (CPU, GPU, wall):
- a counter, where one exists, gives energy = counter(end) − counter(start), unwrapped with the
  counter's range and linearly interpolated at the window edges (the sampler reads counters at the
  markers, so normally no interpolation is needed);
- otherwise power samples are integrated with the trapezoidal rule, interpolated at the edges.

Sources are tried in a fixed order (hardware counter, external tool, sampled power, estimate);
the first with data in the window is the figure, the others are kept as cross-checks. Every figure
carries its method and sensor; an unavailable component is None with a reason, never 0.

Net energy subtracts the idle baseline: the mean power of the same source over the baseline
phases (idle-before, idle-after) times the window's duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import COUNTER, METHOD_EXTERNAL, Reading
from .timeline import Timeline

# (meter, kind, quantities) in order of preference for each component. CPU energy is the sum of
# every package and DRAM domain; core/uncore subzones are inside the package and never added.
CPU_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("rapl", "counter", ("cpu_energy", "dram_energy")),
    ("energibridge", "counter", ("cpu_energy", "dram_energy")),
    ("energibridge", "power", ("cpu_power",)),
    ("cpu_estimate", "power", ("cpu_power",)),
)
GPU_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("nvml", "counter", ("gpu_energy",)),
    ("nvml", "power", ("gpu_power",)),
)
# Wall: NETIO's Wh counter is too coarse (3600 J steps), so integrated Load comes first.
WALL_SOURCES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("netio", "power", ("wall_power",)),
    ("netio", "counter", ("wall_energy",)),
)
USAGE_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "cpu_usage_pct": (("system", "cpu_usage"), ("energibridge", "cpu_usage")),
    "ram_usage_pct": (("system", "ram_usage"), ("energibridge", "ram_usage")),
    "gpu_usage_pct": (("nvml", "gpu_usage"),),
    "gpu_mem_util_pct": (("nvml", "gpu_mem_util"),),
    "gpu_mem_used_pct": (("nvml", "gpu_mem_used"),),
}


@dataclass(frozen=True)
class ComponentEnergy:
    """One component's energy over one window, with where it came from."""

    energy_j: float | None
    method: str | None = None
    sensor: str | None = None
    meter: str | None = None
    reason: str | None = None
    domains_j: dict[str, float] = field(default_factory=dict)
    source: tuple[str, str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class WindowMetrics:
    phase: str
    t_start_s: float | None
    t_end_s: float | None
    duration_s: float | None
    energy_cpu_j: float | None
    energy_cpu_method: str | None
    energy_cpu_sensor: str | None
    energy_cpu_meter: str | None
    energy_cpu_reason: str | None
    energy_gpu_j: float | None
    energy_gpu_method: str | None
    energy_gpu_sensor: str | None
    energy_gpu_meter: str | None
    energy_gpu_reason: str | None
    energy_global_j: float | None
    energy_global_method: str | None
    energy_global_reason: str | None
    energy_wall_j: float | None
    energy_wall_method: str | None
    energy_wall_sensor: str | None
    energy_wall_meter: str | None
    energy_wall_reason: str | None
    baseline_cpu_power_w: float | None
    baseline_gpu_power_w: float | None
    baseline_wall_power_w: float | None
    energy_cpu_net_j: float | None
    energy_gpu_net_j: float | None
    energy_global_net_j: float | None
    energy_wall_net_j: float | None
    n_requests: int | None
    new_tokens: int | None
    energy_per_request_j: float | None
    energy_per_token_j: float | None
    energy_net_per_request_j: float | None
    energy_net_per_token_j: float | None
    cpu_usage_pct: float | None
    ram_usage_pct: float | None
    gpu_usage_pct: float | None
    gpu_mem_util_pct: float | None
    gpu_mem_used_pct: float | None
    flag_short_window: bool
    flag_counter_wrap: bool
    flag_counter_reset_unknown_range: bool
    flag_negative_power: bool
    flag_implausible_power: bool
    flag_clock_gap: bool
    flag_window_not_covered: bool
    energy_cpu_domains_j: dict[str, float] = field(default_factory=dict)
    energy_gpu_domains_j: dict[str, float] = field(default_factory=dict)
    crosscheck_j: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not any(
            (
                self.flag_short_window,
                self.flag_counter_wrap,
                self.flag_counter_reset_unknown_range,
                self.flag_negative_power,
                self.flag_implausible_power,
                self.flag_clock_gap,
                self.flag_window_not_covered,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-able: nested detail becomes ``name[sensor]`` keys, notes one string."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, dict):
                stem = name.removesuffix("_j")
                for key, sub in sorted(value.items()):
                    out[f"{stem}_j[{key}]"] = _clean(sub)
            elif isinstance(value, tuple):
                out[name] = "; ".join(value)
            else:
                out[name] = _clean(value)
        out["valid"] = self.valid
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating):
        return float(value)
    return value


# -- series maths ------------------------------------------------------------------------------
@dataclass
class _Flags:
    wrap: bool = False
    reset_unknown: bool = False
    negative: bool = False
    implausible: bool = False
    not_covered: bool = False


def _series(readings: list[Reading]) -> dict[str, tuple[np.ndarray, np.ndarray, float | None]]:
    """Per sensor: (times, values, counter range), sorted by time, duplicates kept in order."""
    grouped: dict[str, list[Reading]] = {}
    for r in readings:
        grouped.setdefault(r.sensor, []).append(r)
    out = {}
    for sensor, rows in grouped.items():
        rows.sort(key=lambda r: r.t_s)
        t = np.array([r.t_s for r in rows], dtype=float)
        v = np.array([r.value for r in rows], dtype=float)
        out[sensor] = (t, v, rows[-1].range_max)
    return out


def unwrap_counter(values: np.ndarray, range_max: float | None) -> tuple[np.ndarray, int, int]:
    """Cumulative amount since the first reading; (cumulative, wraps, resets of unknown range).

    A decrease is a wrap: (range − previous) + current when the range is known; without a range
    only ``current`` can be counted (a lower bound) and the caller flags it.
    """
    if values.size == 0:
        return values.copy(), 0, 0
    steps = np.diff(values)
    wraps = np.flatnonzero(steps < 0)
    unknown = 0
    for i in wraps:
        if range_max is not None:
            steps[i] = (range_max - values[i]) + values[i + 1]
        else:
            steps[i] = values[i + 1]
            unknown += 1
    cumulative = np.concatenate(([0.0], np.cumsum(steps)))
    return cumulative, len(wraps), unknown


def _covers(t: np.ndarray, t0: float, t1: float, tolerance_s: float) -> bool:
    return t.size > 0 and t[0] <= t0 + tolerance_s and t[-1] >= t1 - tolerance_s


def _counter_energy(
    t: np.ndarray,
    v: np.ndarray,
    range_max: float | None,
    t0: float,
    t1: float,
    flags: _Flags,
    max_power_w: float,
    tolerance_s: float,
) -> float | None:
    if t.size < 2 or t[-1] < t0 or t[0] > t1:
        return None
    if not _covers(t, t0, t1, tolerance_s):
        flags.not_covered = True
    cumulative, _wraps, unknown = unwrap_counter(v, range_max)
    inside = (t[1:] > t0) & (t[:-1] < t1)  # steps that overlap the window
    steps = np.flatnonzero(np.diff(v) < 0)
    if any(inside[i] for i in steps):
        flags.wrap = True
        if unknown:
            flags.reset_unknown = True
    dt = np.diff(t)
    ok = inside & (dt > 0)
    if ok.any():
        step_power = np.diff(cumulative)[ok] / dt[ok]
        flags.implausible |= bool((step_power > max_power_w).any())
    return float(np.interp(t1, t, cumulative) - np.interp(t0, t, cumulative))


def _power_energy(
    t: np.ndarray,
    p: np.ndarray,
    t0: float,
    t1: float,
    flags: _Flags,
    max_power_w: float,
    tolerance_s: float,
) -> float | None:
    if t.size == 0 or t[-1] < t0 or t[0] > t1:
        return None
    if not _covers(t, t0, t1, tolerance_s):
        flags.not_covered = True
    inside = (t > t0) & (t < t1)
    times = np.concatenate(([t0], t[inside], [t1]))
    power = np.concatenate(([np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]))
    flags.negative |= bool((power < 0).any())
    flags.implausible |= bool((power > max_power_w).any())
    return float(np.trapezoid(power, times))


def _source_energy(
    timeline: Timeline,
    source: tuple[str, str, tuple[str, ...]],
    t0: float,
    t1: float,
    flags: _Flags,
    max_power_w: float,
    tolerance_s: float,
) -> tuple[float, dict[str, float], str, str] | None:
    """(total J, per-sensor J, method, sensors) of one source, or None without data."""
    meter, kind, quantities = source
    readings = [
        r
        for r in timeline.samples
        if r.meter == meter
        and r.quantity in quantities
        and ((r.kind == COUNTER) == (kind == "counter"))
    ]
    if not readings:
        return None
    domains: dict[str, float] = {}
    for sensor, (t, v, range_max) in _series(readings).items():
        if kind == "counter":
            energy = _counter_energy(t, v, range_max, t0, t1, flags, max_power_w, tolerance_s)
        else:
            energy = _power_energy(t, v, t0, t1, flags, max_power_w, tolerance_s)
        if energy is None:
            return None  # one domain missing would silently under-count the component
        domains[sensor] = energy
    method = readings[0].method
    return sum(domains.values()), domains, method, " + ".join(sorted(domains))


def _component(
    timeline: Timeline,
    sources: tuple[tuple[str, str, tuple[str, ...]], ...],
    t0: float,
    t1: float,
    flags: _Flags,
    max_power_w: float,
    tolerance_s: float,
    label: str,
    crosscheck: dict[str, float],
) -> ComponentEnergy:
    chosen: ComponentEnergy | None = None
    for source in sources:
        source_flags = _Flags()
        result = _source_energy(timeline, source, t0, t1, source_flags, max_power_w, tolerance_s)
        if result is None:
            continue
        total, domains, method, sensors = result
        if chosen is None:
            for name in ("wrap", "reset_unknown", "negative", "implausible", "not_covered"):
                setattr(flags, name, getattr(flags, name) or getattr(source_flags, name))
            chosen = ComponentEnergy(total, method, sensors, source[0], None, domains, source)
        else:
            crosscheck[f"{label}:{source[0]}:{source[1]}"] = total
    if chosen is not None:
        return chosen
    reasons = [
        f"{m}: {info.reason}"
        for m in dict.fromkeys(s[0] for s in sources)
        if (info := timeline.meter_info(m)) is not None and not info.available
    ]
    reason = "; ".join(reasons) if reasons else "no configured meter measured it in this window"
    return ComponentEnergy(None, reason=f"{label} energy unavailable: {reason}")


def _baseline_power(
    timeline: Timeline,
    component: ComponentEnergy,
    baseline_phases: tuple[str, ...],
    max_power_w: float,
    tolerance_s: float,
) -> float | None:
    """Mean power of the component's chosen source over the baseline phases present."""
    if component.source is None:
        return None
    energy = duration = 0.0
    for phase in baseline_phases:
        bounds = timeline.phase_bounds(phase)
        if bounds is None or bounds[1] <= bounds[0]:
            continue
        result = _source_energy(
            timeline, component.source, *bounds, _Flags(), max_power_w, tolerance_s
        )
        if result is None:
            continue
        energy += result[0]
        duration += bounds[1] - bounds[0]
    return energy / duration if duration > 0 else None


def _mean_usage(timeline: Timeline, key: str, t0: float, t1: float) -> float | None:
    for meter, quantity in USAGE_SOURCES[key]:
        values = [
            r.value
            for r in timeline.samples
            if r.meter == meter and r.quantity == quantity and t0 < r.t_s <= t1
        ]
        if values:
            return float(np.mean(values))
    return None


def _max_gap(timeline: Timeline, t0: float, t1: float) -> float:
    external = {m.name for m in timeline.meters if m.method == METHOD_EXTERNAL}
    times = sorted(
        {r.t_s for r in timeline.samples if r.meter not in external and t0 <= r.t_s <= t1}
        | {t0, t1}
    )
    return float(np.max(np.diff(times))) if len(times) > 1 else t1 - t0


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _net(gross: float | None, baseline_w: float | None, duration_s: float) -> float | None:
    return gross - baseline_w * duration_s if gross is not None and baseline_w is not None else None


def window_metrics(
    timeline: Timeline,
    phase: str = "inference",
    baseline_phases: tuple[str, ...] = ("idle-before", "idle-after"),
    n_requests: int | None = None,
    new_tokens: int | None = None,
    max_power_w: float = 5000.0,
    gap_factor: float = 5.0,
) -> WindowMetrics:
    """Metrics of ``phase`` (its first start/end marker pair) of ``timeline``.

    ``max_power_w`` bounds plausible power per sensor; a clock gap is any interval between
    sampler readings longer than ``gap_factor`` × the sampling interval (and 0.5 s).
    """
    bounds = timeline.phase_bounds(phase)
    if bounds is None:
        raise ValueError(f"timeline has no complete {phase!r} window (start and end markers)")
    t0, t1 = bounds
    duration = t1 - t0
    tolerance = 1e-9
    flags = _Flags()
    crosscheck: dict[str, float] = {}
    notes: list[str] = []

    cpu = _component(
        timeline, CPU_SOURCES, t0, t1, flags, max_power_w, tolerance, "cpu", crosscheck
    )
    gpu = _component(
        timeline, GPU_SOURCES, t0, t1, flags, max_power_w, tolerance, "gpu", crosscheck
    )
    wall = _component(
        timeline, WALL_SOURCES, t0, t1, _Flags(), max_power_w, tolerance, "wall", crosscheck
    )

    nvml_info = timeline.meter_info("nvml")
    gpu_absent = gpu.energy_j is None and nvml_info is not None and nvml_info.hardware_absent
    if cpu.energy_j is None:
        energy_global = None
        global_method = None
        global_reason = cpu.reason
    elif gpu.energy_j is not None:
        energy_global = cpu.energy_j + gpu.energy_j
        global_method = f"cpu {cpu.method} + gpu {gpu.method}"
        global_reason = None
    elif gpu_absent:
        energy_global = cpu.energy_j
        global_method = f"cpu {cpu.method} only: no GPU present"
        global_reason = None
        notes.append(f"global = CPU because no GPU is present ({nvml_info.reason})")
    else:
        energy_global = None
        global_method = None
        global_reason = gpu.reason

    base_cpu = _baseline_power(timeline, cpu, baseline_phases, max_power_w, tolerance)
    base_gpu = _baseline_power(timeline, gpu, baseline_phases, max_power_w, tolerance)
    base_wall = _baseline_power(timeline, wall, baseline_phases, max_power_w, tolerance)
    cpu_net = _net(cpu.energy_j, base_cpu, duration)
    gpu_net = _net(gpu.energy_j, base_gpu, duration)
    if energy_global is None:
        global_net = None
    elif gpu.energy_j is not None:
        global_net = cpu_net + gpu_net if cpu_net is not None and gpu_net is not None else None
    else:
        global_net = cpu_net
    if base_cpu is None and cpu.energy_j is not None:
        notes.append(f"no baseline phase among {list(baseline_phases)}: net energy unavailable")

    used_periods = [
        info.update_period_s
        for c in (cpu, gpu)
        if c.meter is not None and (info := timeline.meter_info(c.meter)) is not None
    ]
    short = duration < max([timeline.interval_s, *used_periods])
    gap = _max_gap(timeline, t0, t1) > max(gap_factor * timeline.interval_s, 0.5)
    if flags.reset_unknown:
        notes.append("a counter decreased without a known range; counted as a reset (lower bound)")
    if short:
        notes.append("window shorter than a sensor's update period or the sampling interval")
    if gap:
        notes.append("gap in sampling longer than the allowed maximum inside the window")

    return WindowMetrics(
        phase=phase,
        t_start_s=t0,
        t_end_s=t1,
        duration_s=duration,
        energy_cpu_j=cpu.energy_j,
        energy_cpu_method=cpu.method,
        energy_cpu_sensor=cpu.sensor,
        energy_cpu_meter=cpu.meter,
        energy_cpu_reason=cpu.reason,
        energy_gpu_j=gpu.energy_j,
        energy_gpu_method=gpu.method,
        energy_gpu_sensor=gpu.sensor,
        energy_gpu_meter=gpu.meter,
        energy_gpu_reason=("no GPU present: " + (nvml_info.reason or ""))
        if gpu_absent
        else gpu.reason,
        energy_global_j=energy_global,
        energy_global_method=global_method,
        energy_global_reason=global_reason,
        energy_wall_j=wall.energy_j,
        energy_wall_method=wall.method,
        energy_wall_sensor=wall.sensor,
        energy_wall_meter=wall.meter,
        energy_wall_reason=wall.reason,
        baseline_cpu_power_w=base_cpu,
        baseline_gpu_power_w=base_gpu,
        baseline_wall_power_w=base_wall,
        energy_cpu_net_j=cpu_net,
        energy_gpu_net_j=gpu_net,
        energy_global_net_j=global_net,
        energy_wall_net_j=_net(wall.energy_j, base_wall, duration),
        n_requests=n_requests,
        new_tokens=new_tokens,
        energy_per_request_j=_div(energy_global, n_requests),
        energy_per_token_j=_div(energy_global, new_tokens),
        energy_net_per_request_j=_div(global_net, n_requests),
        energy_net_per_token_j=_div(global_net, new_tokens),
        cpu_usage_pct=_mean_usage(timeline, "cpu_usage_pct", t0, t1),
        ram_usage_pct=_mean_usage(timeline, "ram_usage_pct", t0, t1),
        gpu_usage_pct=_mean_usage(timeline, "gpu_usage_pct", t0, t1),
        gpu_mem_util_pct=_mean_usage(timeline, "gpu_mem_util_pct", t0, t1),
        gpu_mem_used_pct=_mean_usage(timeline, "gpu_mem_used_pct", t0, t1),
        flag_short_window=short,
        flag_counter_wrap=flags.wrap,
        flag_counter_reset_unknown_range=flags.reset_unknown,
        flag_negative_power=flags.negative,
        flag_implausible_power=flags.implausible,
        flag_clock_gap=gap,
        flag_window_not_covered=flags.not_covered,
        energy_cpu_domains_j=cpu.domains_j,
        energy_gpu_domains_j=gpu.domains_j,
        crosscheck_j=crosscheck,
        notes=tuple(notes),
    )
