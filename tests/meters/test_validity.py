"""Validity gates on recorded timelines: a busy baseline, a window too short for the counter, a
drifting or warm baseline, a CUDA run that left the GPU idle, and re-judging from recorded
quantities."""

from __future__ import annotations

import json
import re

import pytest

from serving_energy.meters import Marker, Reading, Timeline, window_metrics
from serving_energy.meters.base import MeterInfo
from serving_energy.meters.calibration import idle_power, load_or_calibrate
from serving_energy.serving.validity import ValidityThresholds, evaluate, gate_quantities

RAPL = MeterInfo("rapl", True, None, False, "counter", ("cpu_energy",), 0.001)
SYSTEM = MeterInfo("system", True, None, False, "sampled", ("cpu_usage",), 0.1)
ESTIMATE = MeterInfo("cpu_estimate", True, None, False, "estimate", ("cpu_power",), 0.1)


def marks(*spans):
    return tuple(m for p, a, b in spans for m in (Marker(a, p, "start"), Marker(b, p, "end")))


def run_timeline(
    *,
    idle_usage: float = 2.0,
    idle_w: tuple[float, float] = (10.0, 10.0),
    busy_w: float = 30.0,
    step_j: float = 1e-6,
    inference_s: float = 4.0,
) -> Timeline:
    """RAPL (counter in ``step_j`` steps) and psutil every 0.1 s: idle 2 s, inference, idle 2 s."""
    t0, t1 = 3.0, 3.0 + inference_s
    end = t1 + 3.0
    samples, energy, t = [], 0.0, 0.0
    while t <= end + 1e-9:
        if t < 2.0:
            power, load = idle_w[0], idle_usage
        elif t0 <= t < t1:
            power, load = busy_w, 90.0
        elif t >= t1 + 1.0:
            power, load = idle_w[1], idle_usage
        else:
            power, load = (idle_w[0] + busy_w) / 2, 50.0
        value = round(energy / step_j) * step_j
        samples.append(Reading(t, "rapl", "cpu_energy", value, "J", "counter", "counter", "pkg"))
        samples.append(Reading(t, "system", "cpu_usage", load, "%", "gauge", "sampled", "psutil"))
        energy += power * 0.1
        t = round(t + 0.1, 10)
    phases = marks(("idle-before", 0.0, 2.0), ("inference", t0, t1), ("idle-after", t1 + 1, end))
    return Timeline(tuple(samples), phases, (RAPL, SYSTEM), interval_s=0.1)


def verdict(timeline: Timeline, **kwargs):
    metrics = window_metrics(timeline)
    baseline = {"cpu": {}, "gpu": {}}
    for phase in ("idle-before", "idle-after"):
        power, _, _ = idle_power(timeline, phase)
        baseline["cpu"][phase] = power["cpu"]
    defaults = {"n_answered": 6, "n_expected": 6, "provider": "cpu", "calibration": None}
    quantities = gate_quantities(timeline, metrics, baseline, **{**defaults, **kwargs})
    return quantities, evaluate(quantities, ValidityThresholds())


def gate(result, name):
    return next(g for g in result.gates if g.name == name)


def test_a_quiet_well_measured_run_is_valid():
    quantities, result = verdict(run_timeline())
    assert result.valid, result.reasons
    assert gate(result, "cpu idle as calibrated").passed is None  # no calibration: unchecked
    # RAPL-like: a change at every read, so one update is mean power x the declared 1 ms
    assert quantities["components"]["cpu"]["counter_resolution_j"] == pytest.approx(0.020, abs=1e-3)
    json.dumps(quantities)  # recorded in run.json as it is


def test_a_busy_baseline_is_flagged_with_its_usage():
    _, result = verdict(run_timeline(idle_usage=100.0, idle_w=(63.7, 63.7)))
    assert not result.valid
    (reason,) = [r for r in result.reasons if r.startswith("idle baseline")]
    assert re.fullmatch(
        r"idle baseline: CPU usage (9\d|100)\.\d % in idle-\w+ \(at most 10 % for an idle machine\)",
        reason,
    )


def test_a_window_too_short_for_the_counter_resolution_is_flagged():
    # NVML-like 12 J steps: 4 s at 30 W is 120 J, only 10 steps.
    _, result = verdict(run_timeline(step_j=12.0))
    assert not result.valid
    (reason,) = [r for r in result.reasons if r.startswith("cpu window resolution")]
    assert "10 steps of the counter's 12 J (at least 100 wanted)" in reason


def test_a_drifting_baseline_is_flagged():
    _, result = verdict(run_timeline(idle_w=(10.0, 20.0)))
    assert "cpu baseline stable" in " ".join(result.reasons)


def test_a_baseline_above_the_calibrated_idle_is_flagged_and_below_it_passes():
    calibration = {"idle_power_w": {"cpu": 5.0, "gpu": None}}
    _, result = verdict(run_timeline(), calibration=calibration)
    assert "cpu idle as calibrated: baseline 10 W against the machine's calibrated idle 5 W" in (
        " ".join(result.reasons)
    )
    _, result = verdict(run_timeline(), calibration={"idle_power_w": {"cpu": 9.5}})
    assert gate(result, "cpu idle as calibrated").passed is True


def test_unanswered_prompts_and_an_idle_gpu_are_flagged():
    _, result = verdict(run_timeline(), n_answered=3)
    assert "prompts answered: 3 of 6 prompts answered" in result.reasons
    quantities, result = verdict(run_timeline(), provider="cuda")
    assert gate(result, "device used").passed is None  # no NVML here: unchecked, said so
    quantities["gpu_usage_pct"] = 0.0
    assert not evaluate(quantities, ValidityThresholds()).valid


# The estimate meter's real sensor text, with a " + " that once broke the meter lookup.
SENSOR = "ESTIMATE, not measured: TDP 65 W x (0.1 + 0.9 x load^3) (CodeCarbon CPU-load model)"


def test_estimated_power_needs_enough_samples():
    samples = tuple(
        Reading(t / 10, "cpu_estimate", "cpu_power", 10.0, "W", "gauge", "estimate", SENSOR)
        for t in range(0, 60)
    )
    timeline = Timeline(
        samples,
        marks(("idle-before", 0, 1), ("inference", 2.0, 2.35), ("idle-after", 4, 5)),
        (ESTIMATE,),
        interval_s=0.1,
    )
    _, result = verdict(timeline)
    assert "cpu window resolution: 4 estimate samples in the window (at least 10 wanted)" in (
        result.reasons
    )


def test_thresholds_re_judge_recorded_quantities():
    quantities, result = verdict(run_timeline(idle_usage=20.0))
    assert not result.valid
    lenient = ValidityThresholds.from_config({"idle_cpu_usage_max_pct": 30, "unknown": 1})
    assert evaluate(quantities, lenient).valid


def test_calibration_is_kept_only_when_the_machine_was_idle(tmp_path):
    from serving_energy.meters.calibration import IdleCalibration

    def measured(usage):
        return lambda: IdleCalibration("h", "t", 2.0, usage, {"cpu": 6.5, "gpu": None}, {})

    path = tmp_path / "calibration" / "h.json"
    calibration, status = load_or_calibrate(path, measured(55.0), 10.0)
    assert calibration is None and "discarded" in status and not path.exists()
    calibration, status = load_or_calibrate(path, measured(1.0), 10.0)
    assert calibration["idle_power_w"]["cpu"] == 6.5 and path.is_file()
    again, status = load_or_calibrate(path, measured(99.0), 10.0)  # not measured again
    assert again == calibration and status.startswith("calibrated at")
