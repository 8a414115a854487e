"""Validity gates: is a completed run a data point the analysis may use?

A run can finish without an error and still be worthless: the machine was busy during its idle
baseline, the inference window was too short for the meter's resolution, the baseline drifted
between before and after, a CUDA configuration left the GPU idle. Each gate is computed in two
steps so that thresholds stay an analysis choice:

1. ``gate_quantities`` measures what the gates look at, once, when the run is made (recorded in
   run.json under ``validity.quantities``);
2. ``evaluate`` compares those quantities with the thresholds, when the run is made and again
   whenever the runs are merged with the study's current thresholds (``runs.csv``: ``valid`` and
   ``invalid_reasons``).

A gate that cannot be checked on this machine (no calibration yet, no GPU meter) is recorded as
unchecked with the reason, and does not invalidate the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from serving_energy.meters.base import COUNTER, METHOD_COUNTER
from serving_energy.meters.timeline import Timeline
from serving_energy.meters.window import WindowMetrics

COMPONENTS = ("cpu", "gpu")
BASELINE_PHASES = ("idle-before", "idle-after")


@dataclass(frozen=True)
class ValidityThresholds:
    """The study's limits (config ``validity``); see config/schema.yaml for each."""

    min_counter_steps: int = 100
    min_window_samples: int = 10
    idle_cpu_usage_max_pct: float = 10.0
    baseline_drift_max_pct: float = 25.0
    idle_power_above_calibration_max_pct: float = 20.0
    min_gpu_usage_pct: float = 1.0

    @classmethod
    def from_config(cls, values: Mapping | None) -> ValidityThresholds:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in names})


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool | None  # None: not checkable here; the detail says why
    detail: str


@dataclass(frozen=True)
class Verdict:
    valid: bool
    gates: tuple[Gate, ...] = field(default_factory=tuple)

    @property
    def reasons(self) -> list[str]:
        return [f"{gate.name}: {gate.detail}" for gate in self.gates if gate.passed is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "reasons": self.reasons,
            "gates": [asdict(gate) for gate in self.gates],
        }


# -- step 1: quantities, from the run's timeline and metrics -----------------------------------
def counter_quantum_j(timeline: Timeline, meter: str | None) -> float | None:
    """The energy one update of ``meter``'s counters represents (its resolution), in joules.

    Where the sampler read the counter faster than it updates (some reads saw no change, as with
    NVML's total energy), one update is the mean of the increments it did see. Where every read saw
    a change (RAPL updates about every millisecond), the counter is finer than the sampling: one
    update is the mean power times the meter's declared update period.
    """
    info = timeline.meter_info(meter) if meter else None
    quanta = []
    by_sensor: dict[str, list[tuple[float, float]]] = {}
    for reading in timeline.samples:
        if reading.meter == meter and reading.kind == COUNTER and "energy" in reading.quantity:
            by_sensor.setdefault(reading.sensor, []).append((reading.t_s, reading.value))
    for series in by_sensor.values():
        series.sort()
        times = np.array([t for t, _ in series])
        steps = np.diff(np.array([value for _, value in series]))
        changes = steps[steps > 0]
        if changes.size == 0 or times[-1] <= times[0]:
            continue
        if changes.size < steps.size or not (info and info.update_period_s):
            quanta.append(float(changes.mean()))
        else:
            mean_power_w = float(changes.sum()) / float(times[-1] - times[0])
            quanta.append(mean_power_w * info.update_period_s)
    return max(quanta) if quanta else None


def _samples_in(timeline: Timeline, meter: str | None, t0: float, t1: float) -> int:
    times = {r.t_s for r in timeline.samples if r.meter == meter and t0 <= r.t_s <= t1}
    return len(times)


def _mean_cpu_usage(timeline: Timeline, phase: str) -> float | None:
    bounds = timeline.phase_bounds(phase)
    if bounds is None:
        return None
    values = [
        r.value
        for r in timeline.samples
        if r.meter == "system" and r.quantity == "cpu_usage" and bounds[0] < r.t_s <= bounds[1]
    ]
    return float(np.mean(values)) if values else None


def gate_quantities(
    timeline: Timeline,
    metrics: WindowMetrics,
    baseline_power_w: Mapping[str, Mapping[str, float | None]],
    *,
    n_answered: int,
    n_expected: int,
    provider: str,
    calibration: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the gates need, as plain values (recorded in run.json).

    ``baseline_power_w``: per component, the mean power of each idle phase (W).
    """
    bounds = timeline.phase_bounds("inference")
    components = {}
    for component in COMPONENTS:
        figure = metrics.component(component)
        if figure.energy_j is None:
            continue
        components[component] = {
            "method": figure.method,
            "energy_j": figure.energy_j,
            "counter_resolution_j": counter_quantum_j(timeline, figure.meter)
            if figure.method == METHOD_COUNTER
            else None,
            "samples_in_window": _samples_in(timeline, figure.meter, *bounds) if bounds else 0,
            "baseline_power_w": dict(baseline_power_w.get(component, {})),
        }
    return {
        "n_answered": n_answered,
        "n_expected": n_expected,
        "provider": provider,
        "window_flags": metrics.flags.raised(),
        "components": components,
        "idle_cpu_usage_pct": {
            phase: _mean_cpu_usage(timeline, phase) for phase in BASELINE_PHASES
        },
        "gpu_usage_pct": metrics.gpu_usage_pct,
        "calibration": dict(calibration) if calibration else None,
    }


# -- step 2: the verdict -----------------------------------------------------------------------
def evaluate(quantities: Mapping[str, Any], thresholds: ValidityThresholds) -> Verdict:
    gates = [
        _prompts_answered(quantities),
        _window_flags(quantities),
        *_window_resolution(quantities, thresholds),
        _idle_cpu(quantities, thresholds),
        *_baseline_drift(quantities, thresholds),
        *_idle_against_calibration(quantities, thresholds),
        _device_used(quantities, thresholds),
    ]
    return Verdict(all(gate.passed is not False for gate in gates), tuple(gates))


def _prompts_answered(q: Mapping) -> Gate:
    answered, expected = q["n_answered"], q["n_expected"]
    return Gate(
        "prompts answered", answered == expected, f"{answered} of {expected} prompts answered"
    )


def _window_flags(q: Mapping) -> Gate:
    flags = q.get("window_flags") or []
    detail = "none" if not flags else ", ".join(flag.removeprefix("flag_") for flag in flags)
    return Gate("meter window", not flags, f"window flags: {detail}")


def _window_resolution(q: Mapping, t: ValidityThresholds) -> list[Gate]:
    gates = []
    for component, c in q.get("components", {}).items():
        name = f"{component} window resolution"
        resolution = c.get("counter_resolution_j")
        if c.get("method") == METHOD_COUNTER and resolution:
            steps = c["energy_j"] / resolution
            gates.append(
                Gate(
                    name,
                    steps >= t.min_counter_steps,
                    f"{c['energy_j']:.3g} J is {steps:.0f} steps of the counter's "
                    f"{resolution:.3g} J (at least {t.min_counter_steps} wanted)",
                )
            )
        else:
            samples = c.get("samples_in_window", 0)
            gates.append(
                Gate(
                    name,
                    samples >= t.min_window_samples,
                    f"{samples} {c.get('method')} samples in the window "
                    f"(at least {t.min_window_samples} wanted)",
                )
            )
    return gates


def _idle_cpu(q: Mapping, t: ValidityThresholds) -> Gate:
    usage = {k: v for k, v in (q.get("idle_cpu_usage_pct") or {}).items() if v is not None}
    if not usage:
        return Gate("idle baseline", None, "no CPU usage was sampled in the idle windows")
    worst_phase = max(usage, key=usage.get)
    return Gate(
        "idle baseline",
        usage[worst_phase] <= t.idle_cpu_usage_max_pct,
        f"CPU usage {usage[worst_phase]:.1f} % in {worst_phase} "
        f"(at most {t.idle_cpu_usage_max_pct:g} % for an idle machine)",
    )


def _baseline_drift(q: Mapping, t: ValidityThresholds) -> list[Gate]:
    gates = []
    for component, c in q.get("components", {}).items():
        powers = [c["baseline_power_w"].get(phase) for phase in BASELINE_PHASES]
        if None in powers:
            continue
        before, after = powers
        high = max(before, after)
        drift = 0.0 if high <= 0 else abs(before - after) / high * 100
        gates.append(
            Gate(
                f"{component} baseline stable",
                drift <= t.baseline_drift_max_pct,
                f"idle power {before:.3g} W before, {after:.3g} W after: {drift:.0f} % apart "
                f"(at most {t.baseline_drift_max_pct:g} %)",
            )
        )
    return gates


def _idle_against_calibration(q: Mapping, t: ValidityThresholds) -> list[Gate]:
    calibration = q.get("calibration") or {}
    gates = []
    for component, c in q.get("components", {}).items():
        name = f"{component} idle as calibrated"
        calibrated = (calibration.get("idle_power_w") or {}).get(component)
        powers = [p for p in c["baseline_power_w"].values() if p is not None]
        if calibrated is None or not powers:
            gates.append(Gate(name, None, "no idle calibration of this machine to compare with"))
            continue
        limit = calibrated * (1 + t.idle_power_above_calibration_max_pct / 100)
        gates.append(
            Gate(
                name,
                max(powers) <= limit,
                f"baseline {max(powers):.3g} W against the machine's calibrated idle "
                f"{calibrated:.3g} W (at most {limit:.3g} W)",
            )
        )
    return gates


def _device_used(q: Mapping, t: ValidityThresholds) -> Gate:
    if q.get("provider") != "cuda":
        return Gate("device used", True, "the engine reported the CPU, as configured")
    usage = q.get("gpu_usage_pct")
    if usage is None:
        return Gate("device used", None, "no GPU utilisation was sampled (NVML unavailable)")
    return Gate(
        "device used",
        usage >= t.min_gpu_usage_pct,
        f"GPU {usage:.1f} % busy during inference (at least {t.min_gpu_usage_pct:g} %)",
    )
