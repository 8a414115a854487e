"""NVML against a fake module: counter present and absent, no GPU, library missing."""

import pytest

from serving_energy.meters import Marker, NvmlMeter, Timeline, window_metrics

from .fakes import FakeNvml


def test_counter_present_reads_energy_power_and_utilisation() -> None:
    nvml = FakeNvml()
    meter = NvmlMeter(0, nvml=nvml)
    assert meter.availability().available
    assert meter.has_energy_counter and meter.method == "counter"
    meter.start()
    readings = {r.quantity: r for r in meter.read(2.0)}
    assert readings["gpu_energy"].value == pytest.approx(1000.0)  # 1e6 mJ
    assert readings["gpu_energy"].kind == "counter" and readings["gpu_energy"].unit == "J"
    assert readings["gpu_power"].value == pytest.approx(75.0)
    assert readings["gpu_power"].method == "sampled_power"
    assert readings["gpu_usage"].value == 80.0
    assert readings["gpu_mem_util"].value == 30.0
    assert readings["gpu_mem_used"].value == pytest.approx(25.0)
    assert "Fake A100" in readings["gpu_power"].sensor
    assert [r.quantity for r in meter.read_counters(3.0)] == ["gpu_energy"]
    meter.stop()
    assert nvml.shutdowns == 1


def test_counter_absent_falls_back_to_power_samples() -> None:
    meter = NvmlMeter(0, nvml=FakeNvml(energy_counter=False))
    assert meter.availability().available
    assert not meter.has_energy_counter and meter.method == "sampled_power"
    meter.start()
    quantities = {r.quantity for r in meter.read(0.0)}
    assert "gpu_energy" not in quantities and "gpu_power" in quantities
    assert meter.read_counters(0.0) == []


def test_no_gpu_is_unavailable_and_hardware_absent() -> None:
    availability = NvmlMeter(0, nvml=FakeNvml(count=0)).availability()
    assert not availability.available and availability.hardware_absent
    assert "no GPU" in availability.reason


def test_gpu_index_out_of_range_is_not_hardware_absent() -> None:
    availability = NvmlMeter(3, nvml=FakeNvml(count=1)).availability()
    assert not availability.available and not availability.hardware_absent
    assert "index 3" in availability.reason


def test_library_missing_is_unavailable_with_reason() -> None:
    availability = NvmlMeter(0, nvml=FakeNvml(library=False)).availability()
    assert not availability.available and availability.hardware_absent
    assert "NVML library not found" in availability.reason


def test_real_pynvml_on_this_machine_never_raises() -> None:
    availability = NvmlMeter(0).availability()
    if availability.available:  # pragma: no cover - only on a machine with a GPU
        pytest.skip("a GPU is present")
    assert availability.reason


def _gpu_timeline(nvml: FakeNvml) -> Timeline:
    """Power 100 W for 4 s; the counter advances 400 J (and wraps never: 64-bit mJ)."""
    meter = NvmlMeter(0, nvml=nvml)
    meter.availability()
    meter.start()
    samples = []
    for t in range(5):
        nvml.energy_mj = 1_000_000 + t * 100_000
        nvml.power_mw = 100_000
        samples += meter.read(float(t))
    markers = (Marker(0.0, "inference", "start"), Marker(4.0, "inference", "end"))
    return Timeline(tuple(samples), markers, (meter.info(meter.availability()),), interval_s=1.0)


def test_window_prefers_counter_and_keeps_integrated_power_as_crosscheck() -> None:
    metrics = window_metrics(_gpu_timeline(FakeNvml()))
    assert metrics.gpu.energy_j == pytest.approx(400.0)
    assert metrics.gpu.method == "counter"
    assert metrics.crosscheck_j["gpu:nvml:power"] == pytest.approx(400.0)
    assert metrics.gpu_usage_pct == 80.0 and metrics.gpu_mem_used_pct == pytest.approx(25.0)


def test_window_integrates_power_without_counter() -> None:
    metrics = window_metrics(_gpu_timeline(FakeNvml(energy_counter=False)))
    assert metrics.gpu.energy_j == pytest.approx(400.0)
    assert metrics.gpu.method == "sampled_power"
