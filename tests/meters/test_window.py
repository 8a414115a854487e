"""Window maths on recorded timelines with answers computed by hand."""

import json

import numpy as np
import pytest

from serving_energy.meters import Marker, Reading, Timeline, unwrap_counter, window_metrics
from serving_energy.meters.base import MeterInfo

RAPL = MeterInfo("rapl", True, None, False, "counter", ("cpu_energy",), 0.001)
NVML = MeterInfo("nvml", True, None, False, "sampled_power", ("gpu_power",), 0.1)
SYSTEM = MeterInfo("system", True, None, False, "sampled", ("cpu_usage",), 0.1)
NVML_ABSENT = MeterInfo("nvml", False, "NVML library not found", True, "counter", (), 0.1)
SENSOR = "intel-rapl:0 package-0"


def cpu(t: float, joules: float, range_max: float | None = 1000.0) -> Reading:
    return Reading(t, "rapl", "cpu_energy", joules, "J", "counter", "counter", SENSOR, range_max)


def gpu(t: float, watts: float) -> Reading:
    return Reading(t, "nvml", "gpu_power", watts, "W", "gauge", "sampled_power", "nvml gpu0")


def usage(t: float, quantity: str, pct: float) -> Reading:
    return Reading(t, "system", quantity, pct, "%", "gauge", "sampled", "psutil")


def phases(*spans: tuple[str, float, float]) -> tuple[Marker, ...]:
    return tuple(m for p, a, b in spans for m in (Marker(a, p, "start"), Marker(b, p, "end")))


STANDARD_PHASES = phases(("idle-before", 0, 2), ("inference", 3, 7), ("idle-after", 8, 10))


def recorded_run() -> Timeline:
    """CPU draws 10 W idle and 30 W during inference (counter); GPU 50 W idle, 100 W busy."""
    counter = {0: 0, 2: 20, 3: 30, 7: 150, 8: 160, 10: 180}
    gpu_w = {t: 50.0 for t in range(11)} | {4: 100.0, 5: 100.0, 6: 100.0}
    samples = [cpu(t, j) for t, j in counter.items()]
    samples += [gpu(t, w) for t, w in gpu_w.items()]
    samples += [usage(t, "cpu_usage", 20.0 if t in (4, 5) else 80.0) for t in range(11)]
    samples += [usage(t, "ram_usage", 50.0) for t in range(11)]
    samples += [usage(t + 0.5, "cpu_usage", 60.0) for t in range(10)]
    return Timeline(
        tuple(sorted(samples, key=lambda r: r.t_s)),
        STANDARD_PHASES,
        (RAPL, NVML, SYSTEM),
        interval_s=0.5,
    )


def test_gross_net_global_and_per_token() -> None:
    m = window_metrics(recorded_run(), n_requests=4, new_tokens=60)
    assert (m.t_start_s, m.t_end_s, m.duration_s) == (3, 7, 4)
    # CPU: counter 150 - 30; GPU: trapezoid 75 + 100 + 100 + 75.
    assert m.cpu.energy_j == pytest.approx(120.0)
    assert m.gpu.energy_j == pytest.approx(350.0)
    assert m.global_.energy_j == pytest.approx(470.0)
    assert m.global_.method == "cpu counter + gpu sampled_power"
    # Baselines: CPU (20 J + 20 J) / 4 s = 10 W; GPU 50 W.
    assert m.cpu.baseline_power_w == pytest.approx(10.0)
    assert m.gpu.baseline_power_w == pytest.approx(50.0)
    assert m.cpu.net_j == pytest.approx(120.0 - 40.0)
    assert m.gpu.net_j == pytest.approx(350.0 - 200.0)
    assert m.global_.net_j == pytest.approx(230.0)
    assert m.energy_per("request") == pytest.approx(470.0 / 4)
    assert m.energy_per("token") == pytest.approx(470.0 / 60)
    assert m.energy_per("token", net=True) == pytest.approx(230.0 / 60)
    # cpu_usage samples with 3 < t <= 7: 3.5:60 4:20 4.5:60 5:20 5.5:60 6:80 6.5:60 7:80
    assert m.cpu_usage_pct == pytest.approx((60 + 20 + 60 + 20 + 60 + 80 + 60 + 80) / 8)
    assert m.ram_usage_pct == pytest.approx(50.0)
    assert m.gpu_usage_pct is None
    assert m.valid


def test_window_slicing_interpolates_at_edges() -> None:
    tl = recorded_run()
    markers = phases(("inference", 3.5, 6.5))
    m = window_metrics(Timeline(tl.samples, markers, tl.meters, interval_s=0.5))
    # GPU: p(3.5)=75 -> (75+100)/2*0.5 + 100 + 100 + (100+75)/2*0.5 = 287.5 J
    assert m.gpu.energy_j == pytest.approx(287.5)
    # CPU counter 30 W from 3 to 7: interpolated 45 J .. 135 J
    assert m.cpu.energy_j == pytest.approx(90.0)
    assert m.cpu.baseline_power_w is None and m.cpu.net_j is None


def test_counter_vs_integration_agree_on_a_constant_load() -> None:
    samples = [cpu(t, 25.0 * t, None) for t in range(5)]
    samples += [
        Reading(t, "rapl", "cpu_power", 25.0, "W", "gauge", "sampled_power", "x") for t in range(5)
    ]
    # counter source ignores the gauge rows of the same meter, and the reverse
    m = window_metrics(Timeline(tuple(samples), phases(("inference", 0.5, 3.5)), (RAPL,)))
    assert m.cpu.energy_j == pytest.approx(75.0)


def test_unwrap_with_and_without_range() -> None:
    values = np.array([900.0, 990.0, 10.0, 50.0])
    cumulative, wraps, unknown = unwrap_counter(values, 1000.0)
    assert list(cumulative) == pytest.approx([0, 90, 110, 150]) and (wraps, unknown) == (1, 0)
    cumulative, wraps, unknown = unwrap_counter(values, None)
    assert list(cumulative) == pytest.approx([0, 90, 100, 140]) and (wraps, unknown) == (1, 1)


def test_wrap_inside_window_is_flagged_and_counted() -> None:
    samples = (cpu(0, 900.0), cpu(1, 990.0), cpu(2, 10.0), cpu(3, 50.0))
    m = window_metrics(Timeline(samples, phases(("inference", 0, 3)), (RAPL,)))
    assert m.cpu.energy_j == pytest.approx(150.0)
    assert m.flags.counter_wrap and not m.valid
    samples_unknown = tuple(cpu(r.t_s, r.value, None) for r in samples)
    m = window_metrics(Timeline(samples_unknown, phases(("inference", 0, 3)), (RAPL,)))
    assert m.cpu.energy_j == pytest.approx(140.0)  # lower bound, flagged
    assert m.flags.counter_reset_unknown_range


def test_cpu_only_machine_global_equals_cpu_and_says_so() -> None:
    samples = tuple(cpu(t, 10.0 * t) for t in range(5))
    m = window_metrics(Timeline(samples, phases(("inference", 1, 3)), (RAPL, NVML_ABSENT)))
    assert m.gpu.energy_j is None
    assert "no GPU present" in m.gpu.reason
    assert m.global_.energy_j == pytest.approx(20.0)
    assert m.global_.method == "cpu counter only: no GPU present"
    assert m.gpu_usage_pct is None and m.gpu_mem_used_pct is None


def test_gpu_present_but_unmeasured_makes_global_null_not_cpu() -> None:
    broken = MeterInfo(
        "nvml", False, "NVML failed to initialise: Unknown Error", False, "counter", (), 0.1
    )
    samples = tuple(cpu(t, 10.0 * t) for t in range(5))
    m = window_metrics(Timeline(samples, phases(("inference", 1, 3)), (RAPL, broken)))
    assert m.cpu.energy_j == pytest.approx(20.0)
    assert m.global_.energy_j is None and m.energy_per("token") is None
    assert "NVML failed to initialise" in m.global_.reason


def test_no_cpu_sensor_is_null_with_reason_never_zero() -> None:
    rapl_off = MeterInfo("rapl", False, "no powercap directory", True, "counter", (), 0.001)
    samples = tuple(gpu(t, 50.0) for t in range(5))
    m = window_metrics(Timeline(samples, phases(("inference", 1, 3)), (rapl_off, NVML)))
    assert m.cpu.energy_j is None and m.global_.energy_j is None
    assert "rapl: no powercap directory" in m.cpu.reason


def test_validity_flags() -> None:
    # negative and implausible power
    bad = (gpu(0, 50.0), gpu(1, -5.0), gpu(2, 1e6), gpu(3, 50.0))
    m = window_metrics(Timeline(bad, phases(("inference", 0, 3)), (NVML,), interval_s=1.0))
    assert m.flags.negative_power and m.flags.implausible_power
    # clock gap: 0.1 s sampling with a 3 s hole
    gappy = tuple(gpu(t, 50.0) for t in (0.0, 0.1, 0.2, 3.2, 3.3))
    m = window_metrics(Timeline(gappy, phases(("inference", 0.0, 3.3)), (NVML,), interval_s=0.1))
    assert m.flags.clock_gap and not m.flags.short_window
    # window shorter than the sensor's update period (NVML: 0.1 s)
    dense = tuple(gpu(t / 100, 50.0) for t in range(10))
    m = window_metrics(Timeline(dense, phases(("inference", 0.0, 0.05)), (NVML,), interval_s=0.01))
    assert m.flags.short_window
    # window starting before the first sample
    m = window_metrics(
        Timeline(
            tuple(gpu(t, 50.0) for t in range(1, 4)),
            phases(("inference", 0.0, 3.0)),
            (NVML,),
            interval_s=1.0,
        )
    )
    assert m.flags.window_not_covered


def test_missing_phase_raises() -> None:
    with pytest.raises(ValueError, match="inference"):
        window_metrics(Timeline((), phases(("idle-before", 0, 1))))


def test_to_dict_is_flat_and_json_able() -> None:
    d = window_metrics(recorded_run(), n_requests=4, new_tokens=60).to_dict()
    json.dumps(d)
    assert all(not isinstance(v, dict | list) for v in d.values())
    assert d["energy_cpu_domains_j[intel-rapl:0 package-0]"] == pytest.approx(120.0)
    assert d["energy_global_j"] == pytest.approx(470.0)
    assert d["valid"] is True
    for key in (
        "duration_s",
        "energy_cpu_method",
        "energy_gpu_sensor",
        "flag_clock_gap",
        "gpu_mem_used_pct",
        "energy_per_token_j",
        "notes",
    ):
        assert key in d
