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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .base import COUNTER, METHOD_EXTERNAL, MeterInfo, Reading
from .timeline import Timeline

Source = tuple[str, str, tuple[str, ...]]  # (meter, "counter" | "power", quantities)

# -- meter choice: sources in order of preference for each component ----------------------------
# (meter, kind, quantities) in order of preference for each component. CPU energy is the sum of
# every package and DRAM domain; core/uncore subzones are inside the package and never added.
CPU_SOURCES: tuple[Source, ...] = (
    ("rapl", "counter", ("cpu_energy", "dram_energy")),
    ("energibridge", "counter", ("cpu_energy", "dram_energy")),
    ("energibridge", "power", ("cpu_power",)),
    ("cpu_estimate", "power", ("cpu_power",)),
)
GPU_SOURCES: tuple[Source, ...] = (
    ("nvml", "counter", ("gpu_energy",)),
    ("nvml", "power", ("gpu_power",)),
)
# Wall: NETIO's Wh counter is too coarse (3600 J steps), so integrated Load comes first.
WALL_SOURCES: tuple[Source, ...] = (
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
    """One component's energy over one window: the figure of the source chosen for it, with its
    method, sensor and meter (or None with a reason), its idle baseline and the net energy."""

    energy_j: float | None
    method: str | None = None
    sensor: str | None = None
    meter: str | None = None
    reason: str | None = None
    domains_j: dict[str, float] = field(default_factory=dict)
    source: Source | None = None
    baseline_power_w: float | None = None
    net_j: float | None = None


@dataclass(frozen=True)
class WindowFlags:
    """What makes a window's figures doubtful; any of them makes the window invalid."""

    short_window: bool = False
    counter_wrap: bool = False
    counter_reset_unknown_range: bool = False
    negative_power: bool = False
    implausible_power: bool = False
    clock_gap: bool = False
    window_not_covered: bool = False

    def to_dict(self) -> dict[str, bool]:
        """``flag_<name>`` per flag, the names run.json and the runs table use."""
        return {f"flag_{name}": getattr(self, name) for name in self.__dataclass_fields__}

    def raised(self) -> list[str]:
        return [name for name, value in self.to_dict().items() if value]


# How each component is written: its energy fields, and whether it has a baseline and domains.
_SOURCE_FIELDS = ("method", "sensor", "meter", "reason")
_WRITTEN_FIELDS = {
    "cpu": _SOURCE_FIELDS,
    "gpu": _SOURCE_FIELDS,
    "global": ("method", "reason"),  # CPU + GPU: no sensor of its own
    "wall": _SOURCE_FIELDS,
}
_WITH_BASELINE = ("cpu", "gpu", "wall")
_WITH_DOMAINS = ("cpu", "gpu")


@dataclass(frozen=True)
class WindowMetrics:
    """The metrics of one phase window: one ``ComponentEnergy`` per component (CPU, GPU, their
    sum ``global_``, wall), work done, mean utilisations and flags; flat only in ``to_dict``."""

    phase: str
    t_start_s: float
    t_end_s: float
    duration_s: float
    cpu: ComponentEnergy
    gpu: ComponentEnergy
    global_: ComponentEnergy
    wall: ComponentEnergy
    n_requests: int | None
    new_tokens: int | None
    cpu_usage_pct: float | None
    ram_usage_pct: float | None
    gpu_usage_pct: float | None
    gpu_mem_util_pct: float | None
    gpu_mem_used_pct: float | None
    flags: WindowFlags
    crosscheck_j: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.flags.raised()

    def component(self, name: str) -> ComponentEnergy:
        """``cpu``, ``gpu``, ``global`` or ``wall``."""
        return {"cpu": self.cpu, "gpu": self.gpu, "global": self.global_, "wall": self.wall}[name]

    def energy_per(self, work: str, net: bool = False) -> float | None:
        """Global energy in J (``net``: above the idle baseline) per unit of ``work``:
        ``"request"`` (answered) or ``"token"`` (generated); None without either."""
        count = {"request": self.n_requests, "token": self.new_tokens}[work]
        return _div(self.global_.net_j if net else self.global_.energy_j, count)

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-able (run.json's ``metrics``, the runs table's columns): per component
        ``energy_<c>_j`` and its fields, baselines, net energies, work, utilisations, flags, then
        the nested detail as ``name[sensor]`` keys and the notes as one string."""
        out: dict[str, Any] = {
            "phase": self.phase,
            "t_start_s": self.t_start_s,
            "t_end_s": self.t_end_s,
            "duration_s": self.duration_s,
        }
        for name, written in _WRITTEN_FIELDS.items():
            component = self.component(name)
            out[f"energy_{name}_j"] = component.energy_j
            out.update({f"energy_{name}_{f}": getattr(component, f) for f in written})
        for name in _WITH_BASELINE:
            out[f"baseline_{name}_power_w"] = self.component(name).baseline_power_w
        for name in _WRITTEN_FIELDS:
            out[f"energy_{name}_net_j"] = self.component(name).net_j
        out.update(
            n_requests=self.n_requests,
            new_tokens=self.new_tokens,
            energy_per_request_j=self.energy_per("request"),
            energy_per_token_j=self.energy_per("token"),
            energy_net_per_request_j=self.energy_per("request", net=True),
            energy_net_per_token_j=self.energy_per("token", net=True),
            cpu_usage_pct=self.cpu_usage_pct,
            ram_usage_pct=self.ram_usage_pct,
            gpu_usage_pct=self.gpu_usage_pct,
            gpu_mem_util_pct=self.gpu_mem_util_pct,
            gpu_mem_used_pct=self.gpu_mem_used_pct,
            **self.flags.to_dict(),
        )
        for name in _WITH_DOMAINS:
            for sensor, energy in sorted(self.component(name).domains_j.items()):
                out[f"energy_{name}_domains_j[{sensor}]"] = energy
        for source, energy in sorted(self.crosscheck_j.items()):
            out[f"crosscheck_j[{source}]"] = energy
        out = {key: _clean(value) for key, value in out.items()}
        out["notes"] = "; ".join(self.notes)
        out["valid"] = self.valid
        return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.floating):
        return float(value)
    return value


# -- energy integration: one source over one interval ------------------------------------------
# Integration adds to a set the names of the ``WindowFlags`` it finds raised.
Raised = set[str]


@dataclass(frozen=True)
class _Interval:
    """Where to integrate, and what power is plausible there."""

    t0: float
    t1: float
    max_power_w: float
    tolerance_s: float = 1e-9

    def covered_by(self, t: np.ndarray) -> bool:
        return (
            t.size > 0
            and t[0] <= self.t0 + self.tolerance_s
            and t[-1] >= self.t1 - self.tolerance_s
        )


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


def _counter_energy(
    t: np.ndarray, v: np.ndarray, range_max: float | None, interval: _Interval, flags: Raised
) -> float | None:
    t0, t1 = interval.t0, interval.t1
    if t.size < 2 or t[-1] < t0 or t[0] > t1:
        return None
    if not interval.covered_by(t):
        flags.add("window_not_covered")
    cumulative, _wraps, unknown = unwrap_counter(v, range_max)
    inside = (t[1:] > t0) & (t[:-1] < t1)  # steps that overlap the window
    steps = np.flatnonzero(np.diff(v) < 0)
    if any(inside[i] for i in steps):
        flags.add("counter_wrap")
        if unknown:
            flags.add("counter_reset_unknown_range")
    dt = np.diff(t)
    ok = inside & (dt > 0)
    if ok.any():
        step_power = np.diff(cumulative)[ok] / dt[ok]
        if (step_power > interval.max_power_w).any():
            flags.add("implausible_power")
    return float(np.interp(t1, t, cumulative) - np.interp(t0, t, cumulative))


def _power_energy(t: np.ndarray, p: np.ndarray, interval: _Interval, flags: Raised) -> float | None:
    t0, t1 = interval.t0, interval.t1
    if t.size == 0 or t[-1] < t0 or t[0] > t1:
        return None
    if not interval.covered_by(t):
        flags.add("window_not_covered")
    inside = (t > t0) & (t < t1)
    times = np.concatenate(([t0], t[inside], [t1]))
    power = np.concatenate(([np.interp(t0, t, p)], p[inside], [np.interp(t1, t, p)]))
    if (power < 0).any():
        flags.add("negative_power")
    if (power > interval.max_power_w).any():
        flags.add("implausible_power")
    return float(np.trapezoid(power, times))


def _source_energy(
    timeline: Timeline, source: Source, interval: _Interval, flags: Raised
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
            energy = _counter_energy(t, v, range_max, interval, flags)
        else:
            energy = _power_energy(t, v, interval, flags)
        if energy is None:
            return None  # one domain missing would silently under-count the component
        domains[sensor] = energy
    method = readings[0].method
    return sum(domains.values()), domains, method, " + ".join(sorted(domains))


# -- meter choice: the first source with data is the figure, the others cross-check it ----------
def _choose_source(
    timeline: Timeline,
    sources: tuple[Source, ...],
    interval: _Interval,
    flags: Raised,
    label: str,
    crosscheck: dict[str, float],
) -> ComponentEnergy:
    chosen: ComponentEnergy | None = None
    for source in sources:
        source_flags: Raised = set()
        result = _source_energy(timeline, source, interval, source_flags)
        if result is None:
            continue
        total, domains, method, sensors = result
        if chosen is None:
            flags |= source_flags
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


# -- per-component results: idle baseline, net energy, the global sum --------------------------
def _baseline_power(
    timeline: Timeline,
    component: ComponentEnergy,
    baseline_phases: tuple[str, ...],
    max_power_w: float,
) -> float | None:
    """Mean power of the component's chosen source over the baseline phases present."""
    if component.source is None:
        return None
    energy = duration = 0.0
    for phase in baseline_phases:
        bounds = timeline.phase_bounds(phase)
        if bounds is None or bounds[1] <= bounds[0]:
            continue
        result = _source_energy(timeline, component.source, _Interval(*bounds, max_power_w), set())
        if result is None:
            continue
        energy += result[0]
        duration += bounds[1] - bounds[0]
    return energy / duration if duration > 0 else None


def _with_baseline(
    timeline: Timeline,
    component: ComponentEnergy,
    baseline_phases: tuple[str, ...],
    duration_s: float,
    max_power_w: float,
) -> ComponentEnergy:
    baseline_w = _baseline_power(timeline, component, baseline_phases, max_power_w)
    net_j = None
    if component.energy_j is not None and baseline_w is not None:
        net_j = component.energy_j - baseline_w * duration_s
    return replace(component, baseline_power_w=baseline_w, net_j=net_j)


def _global_energy(
    cpu: ComponentEnergy, gpu: ComponentEnergy, nvml: MeterInfo | None
) -> tuple[ComponentEnergy, ComponentEnergy, str | None]:
    """(CPU + GPU, the GPU's figure, a note): the sum where both are known, CPU alone where this
    machine has no GPU (the GPU's reason then says so), None with the missing part's reason."""
    if gpu.energy_j is None and nvml is not None and nvml.hardware_absent:
        gpu = replace(gpu, reason="no GPU present: " + (nvml.reason or ""))
        if cpu.energy_j is not None:
            note = f"global = CPU because no GPU is present ({nvml.reason})"
            method = f"cpu {cpu.method} only: no GPU present"
            return ComponentEnergy(cpu.energy_j, method, net_j=cpu.net_j), gpu, note
    if cpu.energy_j is None:
        return ComponentEnergy(None, reason=cpu.reason), gpu, None
    if gpu.energy_j is None:
        return ComponentEnergy(None, reason=gpu.reason), gpu, None
    method = f"cpu {cpu.method} + gpu {gpu.method}"
    net_j = cpu.net_j + gpu.net_j if cpu.net_j is not None and gpu.net_j is not None else None
    return ComponentEnergy(cpu.energy_j + gpu.energy_j, method, net_j=net_j), gpu, None


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
    interval = _Interval(t0, t1, max_power_w)
    flags: Raised = set()
    crosscheck: dict[str, float] = {}
    notes: list[str] = []

    def component(sources: tuple[Source, ...], label: str, into: Raised) -> ComponentEnergy:
        chosen = _choose_source(timeline, sources, interval, into, label, crosscheck)
        return _with_baseline(timeline, chosen, baseline_phases, duration, max_power_w)

    cpu = component(CPU_SOURCES, "cpu", flags)
    gpu = component(GPU_SOURCES, "gpu", flags)
    wall = component(WALL_SOURCES, "wall", set())  # a cross-check: its flags do not count
    total, gpu, note = _global_energy(cpu, gpu, timeline.meter_info("nvml"))
    if note:
        notes.append(note)
    if cpu.baseline_power_w is None and cpu.energy_j is not None:
        notes.append(f"no baseline phase among {list(baseline_phases)}: net energy unavailable")

    used_periods = [
        info.update_period_s
        for c in (cpu, gpu)
        if c.meter is not None and (info := timeline.meter_info(c.meter)) is not None
    ]
    short = duration < max([timeline.interval_s, *used_periods])
    gap = _max_gap(timeline, t0, t1) > max(gap_factor * timeline.interval_s, 0.5)
    if "counter_reset_unknown_range" in flags:
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
        cpu=cpu,
        gpu=gpu,
        global_=total,
        wall=wall,
        n_requests=n_requests,
        new_tokens=new_tokens,
        **{key: _mean_usage(timeline, key, t0, t1) for key in USAGE_SOURCES},
        flags=WindowFlags(short_window=short, clock_gap=gap, **dict.fromkeys(flags, True)),
        crosscheck_j=crosscheck,
        notes=tuple(notes),
    )
